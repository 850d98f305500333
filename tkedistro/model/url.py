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

SCHEMES = ("https", "http", "ssh", "git", "file")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.S)
_HOST = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\]"
_NETLOC = re.compile(rf"(?:[A-Za-z0-9._~%!$&'()*+,;=-]+(?::[^@/]*)?@)?(?:{_HOST})(?::\d+)?")
_SCP = re.compile(rf"(?:[A-Za-z0-9._-]+@)?(?:{_HOST}):(?P<path>[^:].*)", re.S)
EXAMPLES = "https://github.com/kubernetes/kubernetes.git or git@host:org/repo.git"


def url_problem(url: str, *, local_paths: bool = False) -> str | None:
    """Why ``url`` may not be given to git as an upstream, or None when it may."""
    if not url:
        return f"expected a git URL like {EXAMPLES}, got an empty value"
    if url.startswith("-"):
        return (f"{url!r} starts with '-', which git would read as an option; "
                f"expected a git URL like {EXAMPLES}")
    if local_paths and url.startswith("/"):
        return None  # a path: git never reads it as an option or a remote helper
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return f"{url!r} holds a space or control character; expected a git URL like {EXAMPLES}"
    if "::" in url.split("://", 1)[0]:
        return (f"{url!r} names a git remote helper ('::'), which can run commands; "
                f"expected a git URL like {EXAMPLES}")
    if match := _URL.fullmatch(url):
        return _scheme_problem(url, match.group("scheme").lower(), match.group("rest"))
    scp = _SCP.fullmatch(url)
    if scp and "/" not in url.split(":", 1)[0] and not scp.group("path").startswith("-"):
        return None
    return (f"{url!r} is not a URL git may fetch from; expected a {', '.join(SCHEMES)} URL "
            f"or scp-like host:path, like {EXAMPLES}")


def _scheme_problem(url: str, scheme: str, rest: str) -> str | None:
    if scheme not in SCHEMES:
        return (f"{url!r}: the scheme {scheme!r} is not allowed; "
                f"expected one of {', '.join(SCHEMES)} (or scp-like host:path)")
    if scheme == "file":
        return None if rest.startswith("/") else (
            f"{url!r}: a file URL needs an absolute path, like file:///srv/mirrors/kubernetes.git")
    netloc = rest.split("/", 1)[0]
    if not _NETLOC.fullmatch(netloc) or netloc.startswith("-"):
        return f"{url!r}: {netloc!r} is not a host name; expected a git URL like {EXAMPLES}"
    return None
