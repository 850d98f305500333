"""A kubeconfig as a document: read (checked), changed, written back with the user's own
comments, order and other entries as they were (ruamel's round trip).

``cluster/kubeconfig.py`` owns the files; here only text in, text out.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from tkedistro.core.errors import ClusterError

SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.width = 1 << 30  # base64 data on one line, as kubectl writes it (no folded scalars)
    return yaml


def parse(text: str, what: str) -> Any:
    """``text`` as a kubeconfig (empty: an empty one), its lists present; a ``ClusterError``
    starting with ``what`` when it is not YAML or not a kubeconfig's shape."""
    from ruamel.yaml.error import YAMLError

    try:
        doc = _yaml().load(text) if text.strip() else {}
    except (YAMLError, ValueError) as exc:
        raise ClusterError(f"{what}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ClusterError(f"{what}: not a kubeconfig (a YAML mapping)")
    if doc.get("kind", "Config") != "Config":
        raise ClusterError(f"{what}: kind: {doc.get('kind')!r}, not a kubeconfig's Config")
    for section, key in SECTIONS:
        items = doc.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ClusterError(f"{what}: {section}: not a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ClusterError(f"{what}: {section}[{i}]: not a {key} entry with a name")
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    for section, _ in SECTIONS:
        if doc.get(section) is None:
            doc[section] = []
    return doc


def dump(doc: Any) -> str:
    buf = StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def with_server(text: str, server: str, what: str) -> str:
    """``text`` with every cluster's ``server`` set to ``server``."""
    doc = parse(text, what)
    if not doc["clusters"]:
        raise ClusterError(f"{what}: names no cluster")
    for entry in doc["clusters"]:
        if not isinstance(entry.get("cluster"), dict):
            raise ClusterError(f"{what}: clusters: an entry without its cluster")
        entry["cluster"]["server"] = server
    return dump(doc)


def add_context(doc: Any, name: str, ours: Any) -> None:
    """Put the first cluster and user of ``ours`` into ``doc`` as ``name`` (replacing
    entries of that name), with a context ``name`` of the two, made the current one."""
    entries = {"clusters": {"name": name, "cluster": _first(ours, "clusters", "cluster")},
               "users": {"name": name, "user": _first(ours, "users", "user")},
               "contexts": {"name": name, "context": {"cluster": name, "user": name}}}
    for section, entry in entries.items():
        doc[section] = [*(e for e in doc[section] if e.get("name") != name), entry]
    doc["current-context"] = name


def remove_context(doc: Any, name: str) -> bool:
    """Take the cluster, user and context ``name`` out of ``doc``, and the current context
    when it is ``name``; whether anything changed."""
    changed = False
    for section, _ in SECTIONS:
        kept = [e for e in doc[section] if e.get("name") != name]
        changed |= len(kept) != len(doc[section])
        doc[section] = kept
    if doc.get("current-context") == name:
        doc["current-context"] = ""
        changed = True
    return changed


def _first(doc: Any, section: str, key: str) -> Any:
    items = doc[section]
    if not items or not isinstance(items[0].get(key), dict):
        raise ClusterError(f"the cluster's kubeconfig has no {section}[0].{key}")
    return items[0][key]
