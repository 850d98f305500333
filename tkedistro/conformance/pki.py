"""Certificates for the local cluster, made with ``openssl`` through the one run helper."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.runner import run


@dataclass(frozen=True)
class Cert:
    """A certificate to issue: file stem, subject CN, optional O, and SANs (serving certs)."""

    name: str
    cn: str
    org: str | None = None
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        return f"/CN={self.cn}" + (f"/O={self.org}" if self.org else "")

    def extensions(self) -> str:
        lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
        sans = [f"DNS:{d}" for d in self.dns] + [f"IP:{i}" for i in self.ips]
        if sans:
            lines.append("extendedKeyUsage=serverAuth,clientAuth")
            lines.append("subjectAltName=" + ",".join(sans))
        else:
            lines.append("extendedKeyUsage=clientAuth")
        return "\n".join(lines) + "\n"


def cluster_certs(node: str, address: str, service_ip: str) -> tuple[Cert, ...]:
    """Every certificate the single-node cluster needs."""
    api_dns = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local", "localhost", node)
    return (
        Cert("apiserver", "kube-apiserver", dns=api_dns, ips=(address, "127.0.0.1", service_ip)),
        Cert("admin", "kubernetes-admin", org="system:masters"),
        Cert("controller-manager", "system:kube-controller-manager"),
        Cert("scheduler", "system:kube-scheduler"),
        Cert("kubelet-client", f"system:node:{node}", org="system:nodes"),
        Cert("kubelet", node, dns=(node, "localhost"), ips=(address, "127.0.0.1")),
        Cert("apiserver-kubelet-client", "kube-apiserver-kubelet-client", org="system:masters"),
        Cert("front-proxy-client", "front-proxy-client"),
        Cert("kube-proxy", "system:kube-proxy"),
    )


def make_ca(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    run(["openssl", "genrsa", "-out", pki / "ca.key", "2048"])
    run(["openssl", "req", "-x509", "-new", "-nodes", "-key", pki / "ca.key", "-sha256",
         "-days", "30", "-subj", "/CN=tkedistro-conformance-ca", "-out", pki / "ca.crt"])


def issue(pki: Path, cert: Cert) -> None:
    """Key, CSR and a CA-signed certificate ``<name>.crt`` / ``<name>.key``."""
    key, csr, crt = (pki / f"{cert.name}.{ext}" for ext in ("key", "csr", "crt"))
    ext = pki / f"{cert.name}.ext"
    ext.write_text(cert.extensions(), encoding="utf-8")
    run(["openssl", "genrsa", "-out", key, "2048"])
    run(["openssl", "req", "-new", "-key", key, "-subj", cert.subject, "-out", csr])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
         "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext, "-out", crt])


def make_service_account_keys(pki: Path) -> None:
    run(["openssl", "genrsa", "-out", pki / "sa.key", "2048"])
    run(["openssl", "rsa", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub"])


def make_pki(pki: Path, certs: tuple[Cert, ...]) -> None:
    """A fresh CA, every cert of ``certs`` and the service-account key pair."""
    make_ca(pki)
    for cert in certs:
        issue(pki, cert)
    make_service_account_keys(pki)
