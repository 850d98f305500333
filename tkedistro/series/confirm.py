"""``tkedistro patches confirm RELEASE [PATCH...]``: a person has checked the trailers
``patches import`` inferred or defaulted, so their markers go.

The markers (``Trailer-Inferred``, ``Trailer-Defaulted``: ``model/patches.py`` ``MARKERS``)
are removed from the commit message of each named patch (every patch of the series when none
is named); nothing else in the file changes. Under the release lock and never mid-rebase, as
one series transaction (``series/transaction.py``), as export and reorder write. The next
``tkedistro source`` re-applies the series from the first confirmed patch only (its bytes
changed), so the commits in ``_src`` carry the confirmed message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.model.manifest import Manifest
from tkedistro.model.patches import parse_patch, unconfirmed_trailers, without_markers
from tkedistro.series import transaction
from tkedistro.series.export import locked_release, require_manifest
from tkedistro.series.reorder import _find as find_entry
from tkedistro.series.transaction import SeriesChange


@dataclass
class ConfirmResult:
    release: str
    # file -> (trailer, value, how it came: inferred or defaulted) for each confirmed one
    confirmed: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    checked: int = 0  # how many patches were looked at

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "checked": self.checked,
                "confirmed": {file: [{"trailer": key, "value": value, "was": how}
                                     for key, value, how in trailers]
                              for file, trailers in self.confirmed.items()}}

    def format_text(self) -> str:
        lines = [f"confirmed  {file}  " + ", ".join(f"{key}: {value} (was {how})"
                                                     for key, value, how in trailers)
                 for file, trailers in self.confirmed.items()]
        if not self.confirmed:
            lines.append(f"{self.release}: nothing to confirm in {self.checked} patch(es); "
                         "no inferred or defaulted trailers are marked")
        else:
            lines.append(f"{self.release}: confirmed the trailers of {len(self.confirmed)} "
                         f"of {self.checked} patch(es); run `tkedistro source {self.release}` "
                         "to bring _src up to date")
        return "\n".join(lines)


def confirm_trailers(ws: Workspace, release: str, wanted: list[str]) -> ConfirmResult:
    """Remove the inferred/defaulted markers of the patches ``wanted`` names (file name,
    path or ``NNNN``; all of the series when empty)."""
    require_manifest(ws, release)
    with locked_release(ws, release) as manifest:
        chosen = _chosen(manifest, wanted)
        result = ConfirmResult(release, checked=len(chosen))
        writes: dict[str, bytes] = {}
        for index, file in chosen:
            where = f"{manifest_name(release)}: patches[{index}].file"
            path = ws.repo_file(file, where)
            patch = parse_patch(path, file)
            marked = unconfirmed_trailers(patch)
            if not marked:
                continue
            text = path.read_bytes().decode("utf-8", errors="surrogateescape")
            writes[file] = without_markers(text).encode("utf-8", errors="surrogateescape")
            result.confirmed[file] = [(key, patch.trailer(key) or "", how)
                                      for key, how in marked.items()]
        if writes:
            with transaction.staging(ws, release):
                transaction.commit(ws, manifest, SeriesChange(writes=writes),
                                   "patches confirm")
    return result


def _chosen(manifest: Manifest, wanted: list[str]) -> list[tuple[int, str]]:
    """(index, file) of each patch ``wanted`` names, in series order; all when empty."""
    indexes = sorted({find_entry(manifest, name) for name in wanted}) if wanted \
        else range(len(manifest.patches))
    return [(i, manifest.patches[i].file) for i in indexes]
