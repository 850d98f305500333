"""Where the local conformance node lives and how it is addressed (shared by ``cluster`` and
``teardown``, which must not import each other)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClusterSpec:
    bin_dir: Path
    root: Path
    address: str
    node: str = "tke-conformance"
    etcd_port: int = 2379
    api_port: int = 6443
    registry: str | None = None  # a plain-HTTP registry on loopback ("127.0.0.1:PORT")
    sandbox_image: str = "k8s.gcr.io/pause:3.2"

    @property
    def with_proxy(self) -> bool:
        """kube-proxy runs when it was built (Service specs need it; CRD specs do not)."""
        return (self.bin_dir / "kube-proxy").is_file()

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def sock(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.api_port}"
