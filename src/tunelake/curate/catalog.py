"""A track catalogue into the curated catalogue tables, as one commit under the workspace lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tunelake.sources import catalog as source
from tunelake.workspace import Workspace


def import_catalog(ws: Workspace, path: str | Path, progress: Callable[[int, int, str], None] | None = None
                   ) -> source.CatalogSummary:
    """Import a catalogue file (idempotent: the same bytes again add nothing)."""
    with ws.writing(command="import-catalog"):
        return source.import_catalog(ws.lake, path, progress=progress)
