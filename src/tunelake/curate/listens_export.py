"""`tunelake export listenbrainz`: one listener's plays from the curated zone as a ListenBrainz import file, and/or
sent to a ListenBrainz-compatible server, so a listener can take their history elsewhere.

It reads the curated plays (every source, already deduplicated and merged by the overlap rule, so a playback known
from Spotify and Last.fm is one listen), not the warehouse: it needs no build and carries the MBIDs the
warehouse does not keep. It only reads, so it takes no writer lock.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelake.curate.plays import read_user_plays
from tunelake.errors import InputError
from tunelake.lake import manifest
from tunelake.sources import listenbrainz_out
from tunelake.workspace import Workspace


@dataclass
class ListensExport:
    handle: str
    listens: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    out: str | None = None
    submitted: int = 0
    requests: int = 0
    waited_s: float = 0.0
    retried_429: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_listenbrainz(ws: Workspace, handle: str, *, out: str | Path | None = None, submit: bool = False,
                        token: str | None = None, server: str = listenbrainz_out.DEFAULT_SERVER,
                        batch: int = listenbrainz_out.BATCH,
                        progress: Callable[[int, int], None] | None = None) -> ListensExport:
    """Write the listener's listens to `out` (a ListenBrainz import file) and/or `submit` them to `server`."""
    if handle not in {u["handle"] for u in manifest.list_users(ws.lake)}:
        raise InputError(f"no listener {handle!r} in this workspace",
                         hint="import their data first, or see `tunelake status` for the handles")
    plays = read_user_plays(ws.lake, manifest.user_key_for(handle))
    listens = listenbrainz_out.listens_of(plays, ws.settings.stream_threshold_ms)
    result = ListensExport(handle, len(listens.payload), listens.skipped)
    if out is not None:
        result.out = str(_write(Path(out), listens.body()))
    if submit:
        sent = listenbrainz_out.submit(listens, token or "", server, batch=batch, progress=progress)
        result.submitted, result.requests = sent.submitted, sent.requests
        result.waited_s, result.retried_429 = round(sent.waited_s, 2), sent.retried_429
    return result


def _write(path: Path, body: dict[str, Any]) -> Path:
    """Atomically: a temporary file beside the target, then a rename; a stopped export leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
