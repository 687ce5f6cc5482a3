"""Storage space: per-domain replay buffers with provenance tags and mixture sampling."""

from __future__ import annotations

from twinrl.storage.replay import TWIN, Storage

__all__ = ["TWIN", "Storage"]
