"""Moved to ``tkedistro/engine/imagerecord.py`` (shared with the component images); kept so
the conformance modules' imports stay as they were."""

from __future__ import annotations

from tkedistro.engine.imagerecord import ImageRecord, local_id

__all__ = ["ImageRecord", "local_id"]
