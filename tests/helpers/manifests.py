"""One factory for release manifest text, shared by the tests that need a manifest."""

from __future__ import annotations

from collections.abc import Sequence

K8S_URL = "https://github.com/kubernetes/kubernetes.git"
V1_20_2 = "faecb196815e248d3ecfb03c680a4507229c2a56"  # upstream's v1.20.2


def manifest_text(*, release: str = "1.20", url: str = K8S_URL, tag: str = "v1.20.2",
                  commit: str = V1_20_2, components: Sequence[str] = ("kubectl", "kubelet"),
                  platforms: Sequence[str] | None = ("linux/amd64",),
                  patches: Sequence[str] | None = (), extra: str = "") -> str:
    """``releases/<release>.yaml`` text; ``platforms``/``patches`` None leaves the key out,
    ``extra`` is appended as it is (more keys, or a hand-written ``patches:`` list)."""
    lines = [
        "schema: 1",
        f'release: "{release}"',
        "upstream:",
        f"  url: {url}",
        f"  tag: {tag}",
        f"  commit: {commit}",
        f"distro_version: {tag}-tke.1",
        "go:",
        '  version: "1.15.15"',
        "builder:",
        "  image: tkedistro/builder:go1.15-bullseye",
        "components: [" + ", ".join(components) + "]",
    ]
    if platforms is not None:
        lines.append("platforms: [" + ", ".join(platforms) + "]")
    if patches is not None:
        lines += ["patches:", *(f"  - file: {p}" for p in patches)] if patches else ["patches: []"]
    return "\n".join(lines) + "\n" + extra
