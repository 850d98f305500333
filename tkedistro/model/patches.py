"""The patch series model: one patch file parsed into a frozen ``PatchFile``.

A patch is either ``git format-patch`` mail (``format="mbox"``) or plain ``git diff``
output (``format="plain"``). The commit message ends with machine-readable trailers
(``REQUIRED_TRAILERS``); for a plain diff they sit in the text before the first diff.
The format is documented in ``docs/patches.md``.
"""

from __future__ import annotations

import codecs
import difflib
import email
import email.errors
import email.policy
import email.utils
import hashlib
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from tkedistro.core.errors import PatchFormatError
from tkedistro.core.workspace import MAX_PATCH_BYTES
from tkedistro.model.diffscan import scan_diffs, starts_unified

REQUIRED_TRAILERS = ("Patch-Kind", "Upstream-Ref", "Upstream-Status")
# what every hint that points at `patches export` adds (export, source, ...)
EXPORT_FLAGS_HINT = ("give --kind, --upstream-ref and --upstream-status for a commit whose "
                     "message lacks those trailers")
KINDS = ("backport", "carry", "fix")
STATUSES = ("merged", "submitted", "not-submitted", "rejected", "superseded")
# Written by ``tkedistro patches import`` (docs/patches.md, "Trailers an import adds"):
DEFAULTED_TRAILER = "Trailer-Defaulted"  # required trailers import guessed; a person confirms
INFERRED_TRAILER = "Trailer-Inferred"  # trailers import worked out from a name or message
REVERTS_TRAILER = "Reverts"  # the upstream PR or commit a carry undoes
# marker trailer -> how the trailers it lists came about; ``patches confirm`` removes them
MARKERS = {DEFAULTED_TRAILER: "defaulted", INFERRED_TRAILER: "inferred"}
OMITTED_TRAILER = "Binary-Omitted"  # binary files ``import --text-only`` left out
SECURITY_TRAILER = "Security-Fix"  # the CVE a file name or message names

_UNIXFROM = re.compile(r"^From \S+ ")
_GIT_MBOX_SEPARATOR = re.compile(r"^From [0-9a-f]{40,64} Mon Sep 17 00:00:00 2001$", re.M)
_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:")
_TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):\s*(.*?)\s*$")
_ENCODED_WORD = re.compile(r"=\?([^?*\s]+)(?:\*[^?\s]*)?\?[BbQq]\?")  # RFC 2047 =?charset?Q?
MAIL_DATE_EXAMPLE = "Thu, 1 Jan 1970 00:00:00 +0000"  # the shape of a mail date, for messages
_SUBJECT_PREFIX = re.compile(r"^\s*((\[[^\]]*\]|re:)\s*)+", re.I)


@dataclass(frozen=True)
class PatchFile:
    path: Path
    format: Literal["mbox", "plain"]
    subject: str | None
    author_name: str | None
    author_email: str | None
    date: str | None
    body: str
    trailers: dict[str, str]
    files: tuple[str, ...]
    binary_without_index: tuple[str, ...]
    sha256: str

    def trailer(self, key: str) -> str | None:
        """The value of trailer ``key``, matched without regard to case (None when absent)."""
        wanted = key.lower()
        return next((v for k, v in self.trailers.items() if k.lower() == wanted), None)


def parse_patch(path: Path, display: str | None = None) -> PatchFile:
    """Parse one patch file; any problem raises ``PatchFormatError`` naming the file."""
    shown = display or str(path)
    try:
        data = _read_regular(path, shown)
    except OSError as exc:
        raise PatchFormatError([f"{shown}: cannot read: {exc.strerror or exc}"]) from None
    text = data.decode("utf-8", errors="surrogateescape")
    if not text.strip():
        raise PatchFormatError([f"{shown}: empty file; expected git format-patch mail or a diff"])
    if _looks_like_mail(text):
        return _parse_mail(path, shown, data, text)
    return _parse_plain(path, shown, data, text)


def _read_regular(path: Path, shown: str) -> bytes:
    """The bytes of a regular file of at most ``MAX_PATCH_BYTES`` (never a FIFO or device)."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise PatchFormatError([f"{shown}: not a regular file; a patch is a plain text file"])
    if info.st_size > MAX_PATCH_BYTES:
        raise PatchFormatError([f"{shown}: {info.st_size} bytes is more than the "
                                f"{MAX_PATCH_BYTES // 2**20} MiB a patch file may have"])
    with path.open("rb") as handle:
        return handle.read(MAX_PATCH_BYTES + 1)[:MAX_PATCH_BYTES]


def _looks_like_mail(text: str) -> bool:
    """Mail headers (after an optional mbox ``From <sha> <date>`` line) naming From or Subject."""
    head = text.lstrip("\n").split("\n\n", 1)[0].split("\n")
    if _UNIXFROM.match(head[0]):
        head = head[1:]
    names = {line.split(":", 1)[0].lower() for line in head if _HEADER.match(line)}
    return bool(head) and bool(_HEADER.match(head[0])) and bool(names & {"from", "subject"})


def _parse_mail(path: Path, shown: str, data: bytes, text: str) -> PatchFile:
    if len(_GIT_MBOX_SEPARATOR.findall(text)) > 1:
        raise PatchFormatError(
            [f"{shown}: holds several mails; keep one commit per file "
             "(git format-patch writes one file per commit)"]
        )
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    subject, name, addr, date = _mail_headers(msg, text, shown)
    content = _mail_payload(msg, shown)
    message, diff = _split_message(content)
    if "\0" in message:
        raise PatchFormatError([f"{shown}: the commit message holds a NUL byte, which git "
                                "cannot keep; remove it"])
    diffs = scan_diffs(diff, shown)
    return PatchFile(
        path=path,
        format="mbox",
        subject=subject,
        author_name=name or None,
        author_email=addr,
        date=date or None,
        body=message.strip("\n"),
        trailers=parse_trailers(message),
        files=tuple(diffs.files),
        binary_without_index=tuple(diffs.binary),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _mail_headers(msg: EmailMessage, text: str, shown: str) -> tuple[str, str, str, str]:
    """Subject, author name and address, and date of a patch mail, each one ``git am`` can
    take; any other is a ``PatchFormatError`` naming the file and the header."""
    raw_subject = _header(msg, "Subject", shown)
    subject = _clean_subject(raw_subject)
    if not subject:
        raise PatchFormatError([f"{shown}: mail has no Subject: header (the commit subject)"
                                if "Subject" not in msg else
                                f"{shown}: the Subject: header is empty (nothing but spaces or "
                                "[PATCH] prefixes); write the commit subject there"])
    name, addr = email.utils.parseaddr(_header(msg, "From", shown))
    if not addr:
        raise PatchFormatError([f"{shown}: mail has no From: header with an address (the author)"])
    date = _header(msg, "Date", shown)
    for header, value in (("Subject", subject), ("From", f"{name} <{addr}>"), ("Date", date)):
        if problem := header_problem(value):
            raise PatchFormatError([f"{shown}: the {header}: header {problem}"])
    if date and not _mail_date(date):
        raise PatchFormatError([f"{shown}: the Date: header {date!r} is not a mail date like "
                                f"{MAIL_DATE_EXAMPLE!r}; fix it or remove the header"])
    head = text.split("\n\n", 1)[0]
    charsets = [*_ENCODED_WORD.findall(head), _header_charset(msg, shown)]
    if unknown := next((c for c in charsets if c and not _known_charset(c)), None):
        raise PatchFormatError([f"{shown}: the mail names the character set {unknown[:60]!r}, "
                                "which is unknown; git format-patch writes UTF-8"])
    return subject, name, addr, date


def _mail_date(date: str) -> bool:
    try:
        return email.utils.parsedate_tz(date) is not None
    except (ValueError, TypeError, OverflowError, IndexError):
        return False


def _header_charset(msg: EmailMessage, shown: str) -> str:
    if msg.get_content_maintype() == "multipart":
        raise PatchFormatError([f"{shown}: a multipart mail; a patch is one text part "
                                "(as git format-patch writes it, without --attach)"])
    try:
        return msg.get_content_charset() or ""
    except (ValueError, TypeError, LookupError):
        return "\ufffd"  # unreadable: reported as unknown


def _known_charset(name: str) -> bool:
    try:
        codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return False
    return True


def _parse_plain(path: Path, shown: str, data: bytes, text: str) -> PatchFile:
    preamble, diff = _split_plain(text)
    if not diff:
        raise PatchFormatError(
            [f"{shown}: not a patch: expected git format-patch mail (From:, Subject: headers) "
             "or a diff (`diff --git` or ---/+++ lines)"]
        )
    diffs = scan_diffs(diff, shown)
    return PatchFile(
        path=path,
        format="plain",
        subject=None,
        author_name=None,
        author_email=None,
        date=None,
        body=preamble.strip("\n"),
        trailers=parse_trailers(preamble),
        files=tuple(diffs.files),
        binary_without_index=tuple(diffs.binary),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _clean_subject(raw: str) -> str:
    """``[PATCH 1/3] Fix x`` -> ``Fix x``, unfolded onto one line (as ``git am`` does)."""
    one_line = " ".join(raw.split())
    return _SUBJECT_PREFIX.sub("", one_line).strip()


MAX_HEADER_CHARS = 1000  # a subject or an author; git format-patch's are under 100


def header_problem(value: str) -> str | None:
    """Why a header value (a subject, an author) cannot go into a commit, or None: a
    control character (git cuts a commit message at NUL) or more than ``MAX_HEADER_CHARS``."""
    if bad := next((c for c in value if ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F), None):
        return f"holds the control character {bad!r}"
    if len(value) > MAX_HEADER_CHARS:
        return f"has {len(value)} characters, more than the {MAX_HEADER_CHARS} allowed"
    return None


def _header(msg: EmailMessage, name: str, shown: str) -> str:
    """Header ``name`` as text (empty when absent); one the parser cannot read (a date in
    year 99999999999, a bad encoded-word) is a ``PatchFormatError`` naming it."""
    try:
        value = msg.get(name)
        return "" if value is None else str(value)
    except (ValueError, TypeError, OverflowError, IndexError, LookupError,
            email.errors.MessageError) as exc:
        raise PatchFormatError([f"{shown}: the {name}: header cannot be read ({exc}); "
                                "fix it, or make the patch again with git format-patch"]
                               ) from None


def _mail_payload(msg: EmailMessage, shown: str) -> str:
    if msg.is_multipart():
        raise PatchFormatError([f"{shown}: a multipart mail; a patch is one text part "
                                "(as git format-patch writes it, without --attach)"])
    raw = msg.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return str(msg.get_payload())
    try:
        charset = msg.get_content_charset() or "utf-8"
        return raw.decode(charset, errors="surrogateescape")
    except (LookupError, ValueError, TypeError):  # an unknown or malformed charset
        return raw.decode("utf-8", errors="surrogateescape")


def _split_message(content: str) -> tuple[str, str]:
    """Commit message and diff part of a mail body (split at ``---`` or the first diff)."""
    lines = content.split("\n")
    for i, line in enumerate(lines):
        if line.rstrip() == "---" or line.startswith("diff --git ") or starts_unified(lines, i):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return content, ""


def _split_plain(text: str) -> tuple[str, str]:
    """Leading free text (may hold trailers) and the diff part of a plain patch."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("diff --git ") or starts_unified(lines, i):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return text, ""


def parse_trailers(message: str) -> dict[str, str]:
    """``Key: value`` lines of the last paragraph of ``message`` (first value of a key wins)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", message.strip("\n")) if p.strip()]
    if not paragraphs:
        return {}
    trailers: dict[str, str] = {}
    last_key: str | None = None
    for line in paragraphs[-1].split("\n"):
        match = _TRAILER.match(line)
        if match:
            last_key = match.group(1)
            trailers.setdefault(last_key, match.group(2))
        elif last_key and line[:1] in (" ", "\t"):
            trailers[last_key] = f"{trailers[last_key]} {line.strip()}".strip()
    return trailers


_EXPECTED = {
    "Patch-Kind": f"one of {', '.join(KINDS)}",
    "Upstream-Ref": "an upstream PR or commit URL (https://...), or none",
    "Upstream-Status": f"one of {', '.join(STATUSES)}",
}


def check_trailers(patch: PatchFile, display: str) -> list[str]:
    """Problems with the required trailers of ``patch`` (missing, empty or not allowed) and
    with its ``Proof:`` trailer when it has one (unknown kind, wrong parameters)."""
    problems = required_trailer_problems(patch.trailer, display)
    proof = patch.trailer("Proof")
    if proof is None:
        return problems
    # the proof specs (pydantic models) load only for a patch that declares one: start-up
    from tkedistro.model.proofspec import proof_problems

    return problems + proof_problems(proof, display)


def required_trailer_problems(trailer: Callable[[str], str | None], display: str) -> list[str]:
    """Problems with the required trailers ``trailer(key)`` gives (missing, empty, not
    allowed, a backport naming no upstream change); ``display`` starts each message."""
    problems: list[str] = []
    for key in REQUIRED_TRAILERS:
        value = trailer(key)
        if value is None or not value:
            state = "missing" if value is None else "empty"
            problems.append(f"{display}: trailer {key}: {state} (expected {_EXPECTED[key]})")
        elif (problem := trailer_value_problem(key, value)) is not None:
            problems.append(f"{display}: trailer {key}: {problem}")
    if trailer("Patch-Kind") == "backport" and trailer("Upstream-Ref") == "none":
        problems.append(
            f"{display}: trailer Upstream-Ref: a backport must name the upstream PR or commit "
            "it comes from (got none)"
        )
    return problems


def trailer_value_problem(key: str, value: str) -> str | None:
    """Why ``value`` is not allowed for the required trailer ``key``, or None."""
    if key == "Upstream-Ref":
        if value == "none" or re.match(r"^https?://\S+$", value):
            return None
        return f"{value!r} is not allowed (expected {_EXPECTED[key]})"
    allowed = KINDS if key == "Patch-Kind" else STATUSES
    if value in allowed:
        return None
    close = difflib.get_close_matches(value.lower(), allowed, n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"{value!r} is not allowed{guess} (expected {_EXPECTED[key]})"


def subject_from_filename(path: Path) -> str:
    """``0003-TKE-FIX-kmem-off.patch`` -> ``TKE FIX kmem off`` (for plain diffs)."""
    stem = path.name
    for suffix in (".patch", ".diff"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    words = re.sub(r"^[0-9]+[-_]", "", stem).replace("_", " ").replace("-", " ").split()
    return " ".join(words) or stem


def defaulted_trailers(patch: PatchFile) -> list[str]:
    """The trailers ``Trailer-Defaulted`` says import guessed (empty once a person confirms)."""
    return [key for key, how in unconfirmed_trailers(patch).items() if how == "defaulted"]


def unconfirmed_trailers(patch: PatchFile) -> dict[str, str]:
    """Trailer -> ``defaulted`` or ``inferred``: the ones ``patches import`` guessed or
    worked out, listed in a marker trailer (``MARKERS``) until a person confirms them."""
    out: dict[str, str] = {}
    for marker, how in MARKERS.items():
        for key in (patch.trailer(marker) or "").split(","):
            if key.strip():
                out.setdefault(key.strip(), how)
    order = {key: i for i, key in enumerate(REQUIRED_TRAILERS)}  # then as the markers say
    return dict(sorted(out.items(), key=lambda item: order.get(item[0], len(order))))


def message_with_trailers(body: str, pairs: list[tuple[str, str]]) -> str:
    """``body`` (a commit message without its subject) ending in the trailers ``pairs``:
    a line of ``body`` naming one of their keys is dropped (its value is in ``pairs``), and
    the lines join the trailer block ``body`` ends in, or start a new paragraph."""
    keys = {key.lower() for key, _ in pairs}
    kept = [line for line in body.splitlines()
            if line.split(":", 1)[0].strip().lower() not in keys]
    text = "\n".join(kept).strip()
    block = "\n".join(f"{key}: {value}" for key, value in pairs)
    if not text:
        return block
    last = re.split(r"\n\s*\n", text)[-1].split("\n")
    ends_in_trailers = all(_TRAILER.match(line) or line[:1] in (" ", "\t") for line in last)
    return f"{text}\n{block}" if ends_in_trailers and block else f"{text}\n\n{block}".strip()


def without_markers(text: str) -> str:
    """A patch file's text without its marker trailers (``MARKERS``): what ``patches
    confirm`` writes. Only the commit message (before the diff) is touched."""
    lines = text.split("\n")
    wanted = tuple(f"{marker.lower()}:" for marker in MARKERS)
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.rstrip() == "---" or line.startswith("diff --git ") or starts_unified(lines, i):
            return "\n".join(out + lines[i:])
        if not line.lower().startswith(wanted):
            out.append(line)
    return "\n".join(out)
