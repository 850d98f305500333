"""``component-http``: requests to a control-plane component's secure port, made with curl
inside the control-plane node: without credentials, then as a ``system:masters`` client
(a body it must accept, optionally one it must refuse), then optionally a flag of its static
pod manifest put back (e.g. klog's ``v`` after ``PUT /debug/flags/v``; that endpoint answers
GET with 406, so the value before cannot be read from it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from tkedistro.cluster.proofkinds.base import Outcome, ProofContext
from tkedistro.engine.protocols import NodeEngine, RunResult
from tkedistro.model.proofspec import ComponentHttp

NEEDS_POD = False
PORTS = {"kube-apiserver": 6443, "kube-controller-manager": 10257, "kube-scheduler": 10259}
PKI = PurePosixPath("/etc/kubernetes/pki")
# kubeadm v1.20 issues this client certificate with O=system:masters (checked before use)
ADMIN_CERT, ADMIN_KEY = PKI / "apiserver-kubelet-client.crt", PKI / "apiserver-kubelet-client.key"
MANIFESTS = PurePosixPath("/etc/kubernetes/manifests")
ADMIN_GROUP = "system:masters"
# why a request without credentials is refused, as the component's delegated authentication
# decides: anonymous requests go through as system:anonymous and RBAC refuses them (403), or
# anonymous requests are off (401)
WHY = {403: " [403: anonymous is authenticated as system:anonymous, RBAC refuses]",
       401: " [401: anonymous requests are not authenticated]"}
FLAG_NOUNS = {"v": "verbosity"}


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0: no HTTP answer at all
    body: str

    def show(self) -> str:
        """The code and the body, or the message of a Kubernetes ``Status`` body."""
        try:
            text = str(json.loads(self.body)["message"])
        except (ValueError, KeyError, TypeError):
            text = " ".join(self.body.split())
        return f"{self.status or 'no answer'} {text[:140]}".strip()


@dataclass(frozen=True)
class Answers:
    """What the component answered to each request the spec asked for."""

    admin: HttpAnswer
    anonymous: HttpAnswer | None = None
    bad: HttpAnswer | None = None
    restore: HttpAnswer | None = None
    original: str = "0"  # the flag's value in the static pod's manifest


def url_of(spec: ComponentHttp) -> str:
    return f"https://127.0.0.1:{spec.port or PORTS[spec.component]}{spec.path}"


def request(engine: NodeEngine, node: str, spec: ComponentHttp, body: str,
            admin: bool) -> HttpAnswer:
    """curl inside the node. ``-k``: kcm and the scheduler serve a self-signed certificate
    they made at start (kubeadm gives them none), so there is no CA to check it against."""
    creds = ["--cert", str(ADMIN_CERT), "--key", str(ADMIN_KEY)] if admin else []
    data = ["--data", body] if body or spec.method != "GET" else []
    return parse_curl(engine.exec(node, [
        "curl", "-sSk", "--max-time", "10", "-X", spec.method, *data, *creds,
        "-w", "\n%{http_code}", url_of(spec)]))


def parse_curl(result: RunResult) -> HttpAnswer:
    """curl's output with ``-w '\\n%{http_code}'`` appended: body, then the code line."""
    body, _, code = result.output.rstrip("\n").rpartition("\n")
    if not code.strip().isdigit():
        return HttpAnswer(0, result.output.strip())
    return HttpAnswer(int(code), body if result.ok else result.output.strip())


def manifest_flag(manifest: str, flag: str = "v") -> str:
    """The ``--flag``/``-flag`` value of the static pod's command; ``0`` (klog's default
    verbosity) without one."""
    found = re.search(rf"^\s*-\s*--?{re.escape(flag)}=(\S+)\s*$", manifest, re.MULTILINE)
    return found.group(1).strip("'\"") if found else "0"


def subject_groups(subject: str) -> list[str]:
    """The O= values of ``openssl x509 -noout -subject`` (1.1/3.x and 1.0 formats)."""
    return [g.strip() for g in re.findall(r"(?:^|[,/=]\s*|\s)O\s*=\s*([^,/\n]+)", subject)]


def _asked(method: str, body: str) -> str:
    return f"{method} {body}".strip()


def _noun(flag: str) -> str:
    return FLAG_NOUNS.get(flag, f"--{flag}")


def check_text(spec: ComponentHttp, node: str) -> str:
    """The check in a sentence, from what the spec asks."""
    parts = []
    if spec.anonymous:
        refused = all(s >= 400 for s in spec.anonymous)
        parts.append("refused without credentials" if refused else
                     f"{' or '.join(map(str, spec.anonymous))} without credentials")
    admin = f"{spec.status} for {spec.body}" if spec.body else f"{spec.status}"
    if spec.bad_body is not None:
        admin += f" and {spec.bad_status} for '{spec.bad_body}'"
    parts.append(f"{admin} as {ADMIN_GROUP}")
    if spec.restore_flag:
        parts.append(f"then the manifest's {_noun(spec.restore_flag)} put back")
    return f"{spec.method} {url_of(spec)} in {node}: " + ", ".join(parts)


def judge(spec: ComponentHttp, got: Answers, groups: Sequence[str]) -> tuple[bool, str]:
    """Each answer against what the spec expects. Only the admin's answers can tell a patch
    that adds a route: the component authorizes before it routes, so without the route it
    refuses the anonymous request the same way and answers the admin 404."""
    problems, shown = [], []
    if got.anonymous is not None:
        if got.anonymous.status not in spec.anonymous:
            wanted = " or ".join(map(str, spec.anonymous))
            problems.append(f"without credentials: {got.anonymous.show()} (expected {wanted})")
        shown.append(f"no credentials -> {got.anonymous.show()}"
                     f"{WHY.get(got.anonymous.status, '')}")
    if ADMIN_GROUP not in groups:
        problems.append(f"client certificate groups {list(groups)}: not in {ADMIN_GROUP}")
    asked = _asked(spec.method, spec.body)
    if got.admin.status != spec.status or (spec.says and spec.says not in got.admin.body):
        wanted = f"{spec.status} {spec.says!r}" if spec.says else f"{spec.status}"
        problems.append(f"admin {asked}: {got.admin.show()} (expected {wanted})")
    shown.append(f"{ADMIN_GROUP} cert, {asked} -> {got.admin.show()}")
    if got.bad is not None:
        bad = _asked(spec.method, spec.bad_body or "")
        if got.bad.status != spec.bad_status:
            problems.append(f"admin {bad}: {got.bad.show()} (expected {spec.bad_status})")
        shown.append(f"{bad} -> {got.bad.show()}")
    if got.restore is not None:
        if got.restore.status != 200:
            problems.append(f"restoring {_noun(spec.restore_flag or '')} {got.original}: "
                            f"{got.restore.show()}")
        shown.append(f"restored to {got.original} -> {got.restore.status or 'no answer'}")
    evidence = "; ".join(shown)
    return (False, "; ".join(problems) + " | " + evidence) if problems else (True, evidence)


def _ask(ctx: ProofContext, spec: ComponentHttp, original: str) -> Answers:
    """The requests in order; the flag is put back even when one of them raised."""
    anonymous = admin = bad = None
    try:
        if spec.anonymous:
            anonymous = request(ctx.engine, ctx.control, spec, spec.body, admin=False)
        admin = request(ctx.engine, ctx.control, spec, spec.body, admin=True)
        if spec.bad_body is not None:
            bad = request(ctx.engine, ctx.control, spec, spec.bad_body, admin=True)
    finally:
        restore = request(ctx.engine, ctx.control, spec, original, admin=True) \
            if spec.restore_flag else None
    return Answers(admin, anonymous, bad, restore, original)


def prove(ctx: ProofContext, spec: ComponentHttp) -> Outcome:
    subject = ctx.engine.exec(ctx.control, ["openssl", "x509", "-noout", "-subject", "-in",
                                            str(ADMIN_CERT)])
    original = "0"
    if spec.restore_flag:
        manifest = ctx.engine.exec(ctx.control, ["cat", str(MANIFESTS /
                                                            f"{spec.component}.yaml")])
        original = manifest_flag(manifest.output, spec.restore_flag) if manifest.ok else "0"
    passed, evidence = judge(spec, _ask(ctx, spec, original), subject_groups(subject.output))
    return Outcome(check_text(spec, ctx.control), passed, evidence)
