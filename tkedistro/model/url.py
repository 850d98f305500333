"""Which upstream URLs tkedistro hands to git: an allow-list, checked before any git call.

git reads a value that starts with ``-`` as an option (``--upload-pack=CMD`` runs CMD) and
``<transport>::<address>`` as a remote helper (``ext::CMD`` runs CMD). An upstream URL comes
from a manifest, ``--upstream`` or ``TKEDISTRO_UPSTREAM``, so it is checked here, once, for
all three: ``https``, ``http``, ``ssh``, ``git`` and ``file`` URLs and scp-like
``[user@]host:path`` are allowed; nothing else is. A mirror on this machine may also be
named by its absolute path on the command line (``local_paths``), never in a manifest.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

from tkedistro.model.refs import port_problem

SCHEMES = ("https", "http", "ssh", "git", "file")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.S)
_HOST = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\]"
_NETLOC = re.compile(rf"(?:[A-Za-z0-9._~%!$&'()*+,;=-]+(?::[^@/]*)?@)?(?:{_HOST})(?::[0-9]+)?")
_SCP = re.compile(rf"(?:[A-Za-z0-9._-]+@)?(?:{_HOST}):(?P<path>[^:].*)", re.S)
EXAMPLES = "https://github.com/kubernetes/kubernetes.git or git@host:org/repo.git"


def url_problem(url: str, *, local_paths: bool = False) -> str | None:
    """Why ``url`` may not be given to git as an upstream, or None when it may.

    A command-line upstream (``local_paths``) may carry credentials (git gets them through
    its credential path); a manifest's may not: it is shared, and its URL is published in
    the SBOM, the provenance and the CI workflows. Messages never show a secret."""
    problem = _shape_problem(url, redact_urls(url), local_paths=local_paths)
    creds = split_credentials(url)
    if problem is None and any(ord(c) < 32 or ord(c) == 127
                               for c in creds.username + creds.password):
        return (f"{creds.url!r}: the user name or password holds an encoded control "
                "character; git's credential protocol cannot carry it")
    if problem or local_paths or creds.url == url:
        return problem
    return (f"{redact_url(url)!r} with a user name or password in it: a manifest is shared "
            "and its URL published (SBOM, provenance, CI workflows); remove them and give "
            "credentials through a git credential helper, or fetch with --upstream URL "
            "(TKEDISTRO_UPSTREAM)")


def _shape_problem(url: str, shown: str, *, local_paths: bool) -> str | None:
    if not url:
        return f"expected a git URL like {EXAMPLES}, got an empty value"
    if url.startswith("-"):
        return (f"{shown!r} starts with '-', which git would read as an option; "
                f"expected a git URL like {EXAMPLES}")
    if local_paths and url.startswith("/"):
        return None  # a path: git never reads it as an option or a remote helper
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return f"{shown!r} holds a space or control character; expected a git URL like {EXAMPLES}"
    if "::" in url.split("://", 1)[0]:
        return (f"{shown!r} names a git remote helper ('::'), which can run commands; "
                f"expected a git URL like {EXAMPLES}")
    if match := _URL.fullmatch(url):
        return _scheme_problem(shown, match.group("scheme").lower(), match.group("rest"))
    scp = _SCP.fullmatch(url)
    if scp and "/" not in url.split(":", 1)[0] and not scp.group("path").startswith("-"):
        return None
    return (f"{shown!r} is not a URL git may fetch from; expected a {', '.join(SCHEMES)} URL "
            f"or scp-like host:path, like {EXAMPLES}")


def _scheme_problem(shown: str, scheme: str, rest: str) -> str | None:
    if scheme not in SCHEMES:
        return (f"{shown!r}: the scheme {scheme!r} is not allowed; "
                f"expected one of {', '.join(SCHEMES)} (or scp-like host:path)")
    if scheme == "file":
        return None if rest.startswith("/") else (
            f"{shown!r}: a file URL needs an absolute path, like file:///srv/mirrors/kubernetes.git")
    netloc = rest.split("/", 1)[0]
    if netloc.count("@") > 1:
        return (f"{shown!r}: the user-info holds an '@'; write it as %40, or give the "
                "credentials through a git credential helper")
    host = redact_url(f"{scheme}://{netloc}")[len(scheme) + 3:]
    if not _NETLOC.fullmatch(netloc) or netloc.startswith("-"):
        return (f"{shown!r}: {host!r} is not a host name; "
                f"expected a git URL like {EXAMPLES}")
    if problem := port_problem(host):
        return f"{shown!r}: {problem}"
    return None


# -- credentials: they reach git through its credential path, never any output -------------

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/]*)@")
_ANY_USERINFO = re.compile(r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/\s'\"]*)@")


class Credentials(NamedTuple):
    """A URL with its secret taken out, and the user name and password that were in it
    (percent-decoded, as git reads them; empty when there were none)."""

    url: str
    username: str
    password: str

    @property
    def given(self) -> bool:
        return bool(self.username or self.password)


def _kept_prefix(match: re.Match[str]) -> str:
    """``scheme://[login@]``: what stays of a URL's ``scheme://user-info@``.

    ``ssh`` keeps the login and loses the password (ssh never reads one from the URL);
    every other scheme loses the whole user-info (a token is often the user name:
    ``https://TOKEN@github.com``; ``git://`` has no authentication).
    """
    scheme, userinfo = match.group("scheme"), match.group("userinfo")
    if scheme.lower() == "ssh":
        return f"{scheme}://{userinfo.partition(':')[0]}@"
    return f"{scheme}://"


def split_credentials(url: str) -> Credentials:
    """``url`` without the user-info that may be a secret, and (http and https) that
    user-info, which git then gets through its credential path. An scp-like
    ``user@host:path`` has no place for a password and keeps its login; paths and ``file``
    URLs have no user-info."""
    match = _USERINFO.match(url)
    if match is None:
        return Credentials(url, "", "")
    bare = _kept_prefix(match) + url[match.end():]
    if match.group("scheme").lower() not in ("http", "https"):
        return Credentials(bare, "", "")
    user, _, password = match.group("userinfo").partition(":")
    return Credentials(bare, unquote(user), unquote(password))


def redact_url(url: str) -> str:
    """``url`` as messages, JSON and state files may show it: no password or token."""
    return split_credentials(url).url


def redact_urls(text: str) -> str:
    """``text`` with the secret user-info of every URL in it taken out (``redact_url``):
    a last guard on what the CLI prints."""
    return _ANY_USERINFO.sub(_kept_prefix, text)


# -- a Debian mirror: where debootstrap fetches packages (their signatures are checked) -------

DEBIAN_MIRROR_EXAMPLE = "http://deb.debian.org/debian"
_MIRROR = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<netloc>[^/?#]*)"
                     r"(?P<path>/[^?#]*)?(?P<extra>[?#].*)?", re.S)


def debian_mirror_problem(url: str) -> str | None:
    """Why ``url`` may not be a Debian mirror (``--debian-mirror``, a manifest's
    ``debian.mirror``), or None: an http or https URL of a host and a path, with no user
    name or password (it is shown in logs and image labels), query or fragment."""
    shown = redact_url(url)
    expected = f"expected an http or https URL of a Debian mirror like {DEBIAN_MIRROR_EXAMPLE}"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return f"{shown!r} holds a space or control character; {expected}"
    match = _MIRROR.fullmatch(url)
    if match is None or match.group("scheme").lower() not in ("http", "https"):
        return f"{shown!r} is not an http or https URL; {expected}"
    netloc = match.group("netloc")
    if "@" in netloc:
        return (f"{shown!r} has a user name or password in it; it would be shown in logs and "
                "image labels: use a mirror that needs none (packages are checked against "
                "Debian's keyring, not the connection)")
    if match.group("extra"):
        return f"{shown!r} has a query or fragment; {expected}"
    if not re.fullmatch(rf"(?:{_HOST})(?::[0-9]+)?", netloc):
        return f"{shown!r}: {netloc!r} is not a host name; {expected}"
    if problem := port_problem(netloc):
        return f"{shown!r}: {problem}"
    return None
