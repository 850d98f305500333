"""A distro repo for the source tests: an upstream whose tags move context, and patches."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.gitrepo import K8S_LIKE_FILES, Upstream, git, make_upstream, write_manifest

TRAILERS = "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted"
BIG = "".join(f"l{i:02d}\n" for i in range(1, 21))  # pkg/big/lines.go: l01 .. l20


def big(**changes: str) -> str:
    """``big(l07="L07")``: BIG with some lines replaced."""
    return "".join(f"{changes.get(f'l{i:02d}', f'l{i:02d}')}\n" for i in range(1, 21))


def with_trailers(message: str) -> str:
    """``message`` with the required trailers it lacks added to its trailer block."""
    missing = [t for t in TRAILERS.splitlines() if t.split(":", 1)[0] + ":" not in message]
    if not missing:
        return message
    sep = "\n" if "Patch-Kind:" in message else "\n\n"
    return message + sep + "\n".join(missing)


def make_context_upstream(root: Path) -> Upstream:
    """v1.20.0 base; v1.20.1 moves the context of l10 (3-way needed); v1.20.2 changes l10."""
    return make_upstream(root, tags={
        "v1.20.0": {**K8S_LIKE_FILES, "pkg/big/lines.go": BIG},
        "v1.20.1": {"pkg/big/lines.go": big(l07="L07"), "README.md": "# tiny\n\nv1.20.1\n"},
        "v1.20.2": {"pkg/big/lines.go": big(l07="L07", l10="upstream10")},
    })


@dataclass
class Distro:
    """A distro repo at ``root`` and a scratch clone of the upstream to make patches in."""

    root: Path
    upstream: Upstream
    scratch: Path

    @property
    def patches(self) -> Path:
        return self.root / "patches" / "1.20"

    @property
    def src(self) -> Path:
        return self.root / "_src" / "1.20"

    def mbox(self, name: str, files: dict[str, str | bytes], subject: str, *,
             base: str = "v1.20.0", author: str = "Jane Maintainer <jane@example.invalid>",
             date: str = "2021-02-03T04:05:06+0100", extra: tuple[str, ...] = ()) -> str:
        """Commit ``files`` on ``base`` in the scratch clone; ``git format-patch`` it.

        The required trailers are added unless ``subject`` (the whole message) has them."""
        self._commit_on(base, files, with_trailers(subject), author, date)
        out = git(self.scratch, "format-patch", "-1", "--stdout", *extra)
        (self.patches / name).write_text(out + "\n")
        return f"patches/1.20/{name}"

    def plain(self, name: str, files: dict[str, str | bytes], *, base: str = "v1.20.0",
              preamble: str = "", extra: tuple[str, ...] = ()) -> str:
        """A plain ``git diff`` file (no mail headers), optionally with leading text; the
        required trailers lead it unless ``preamble`` has them."""
        preamble = with_trailers(preamble.rstrip("\n")).lstrip("\n") + "\n\n"
        self._commit_on(base, files, "scratch", "S <s@example.invalid>", "2021-01-01T00:00:00Z")
        diff = git(self.scratch, "diff", "HEAD~", "HEAD", *extra)
        (self.patches / name).write_text(preamble + diff + "\n")
        return f"patches/1.20/{name}"

    def _commit_on(self, base: str, files: dict[str, str | bytes], subject: str,
                   author: str, date: str) -> None:
        git(self.scratch, "checkout", "-q", "-f", base)
        for rel, content in files.items():
            path = self.scratch / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        git(self.scratch, "add", "-A")
        env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        git(self.scratch, "commit", "-q", f"--author={author}", "-m", subject, env=env)

    def manifest(self, patches: list[str], *, tag: str = "v1.20.1", commit: str | None = None,
                 url: str | None = None, subjects: dict[str, str] | None = None) -> Path:
        path = write_manifest(self.root, "1.20", url=url or self.upstream.url, tag=tag,
                              commit=commit or self.upstream.tags[tag], patches=patches)
        text = path.read_text()
        for file, subject in (subjects or {}).items():
            entry = f"  - file: {file}\n"
            text = text.replace(entry, f"{entry}    subject: {json.dumps(subject)}\n")
        path.write_text(text)
        return path


def make_distro(tmp_path: Path) -> Distro:
    up = make_context_upstream(tmp_path / "up")
    scratch = tmp_path / "scratch"
    git(tmp_path, "clone", "-q", str(up.bare), str(scratch))
    root = tmp_path / "distro"
    (root / "patches" / "1.20").mkdir(parents=True)
    (root / "releases").mkdir()
    return Distro(root=root, upstream=up, scratch=scratch)
