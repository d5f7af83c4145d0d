"""Gaps: windows of a listener's history that the Web API may have lost.

`GET /me/player/recently-played` only ever returns the last 50 plays. When a poll gets 50 plays after its cursor
and no page beyond them, plays between the cursor and the oldest of those 50 may be gone for good; on a listener's
first poll, so may everything before it. tunelake records each such window in the lake (`_manifest/gaps/`), in the
same commit as the page that revealed it, and never guesses what was in it.

A gap is closed by data that covers it, not by a flag: it is open until the listener's curated plays hold an
export (Extended streaming history or account data) whose plays reach from the gap's start to its end, so
importing the export closes it by itself, whenever that happens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tunelake.lake import manifest, zones
from tunelake.lake.store import Lake

GAPS_DIR = f"{zones.MANIFEST}/gaps"
EXPORT_SOURCES = ("extended", "account")
FIX = ("import {handle}'s Extended streaming history (Spotify account privacy page → 'Extended streaming "
       "history'; it covers every play): `tunelake import <zip> --user {handle}`")


@dataclass
class Gap:
    gap_id: str
    handle: str
    user_key: int
    start_ms: int | None  # None: from the beginning of the listener's history
    end_ms: int  # the oldest play the poll returned
    detected_at: str
    status: str = "open"  # open | closed (computed, see `with_status`)

    def window(self) -> str:
        start = "the beginning" if self.start_ms is None else _iso(self.start_ms)
        return f"{start} → {_iso(self.end_ms)}"

    def as_dict(self) -> dict[str, Any]:
        return {"gap_id": self.gap_id, "handle": self.handle, "user_key": self.user_key,
                "start": None if self.start_ms is None else _iso(self.start_ms), "end": _iso(self.end_ms),
                "detected_at": self.detected_at, "status": self.status,
                "fix": FIX.format(handle=self.handle) if self.status == "open" else None}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_gap(lake: Lake, handle: str, user_key: int, start_ms: int | None, end_ms: int) -> Gap:
    """Write a gap entry (inside the caller's transaction); the same window twice is one entry."""
    gap_id = hashlib.sha256(f"{handle}|{start_ms}|{end_ms}".encode()).hexdigest()[:20]
    gap = Gap(gap_id, handle, user_key, start_ms, end_ms, manifest.utcnow().isoformat())
    rel = f"{GAPS_DIR}/{gap_id}.json"
    if not lake.exists(rel):
        lake.write_json(rel, {k: v for k, v in gap.__dict__.items() if k != "status"})
    return gap


def gap_before(lake: Lake, handle: str, user_key: int, cursor_ms: int, items: list[dict[str, Any]],
               page: dict[str, Any], limit: int, played_ms: Any) -> Gap | None:
    """The gap a recently-played answer reveals, if any (recorded inside the caller's transaction): a full page
    (`limit` plays) with no page after it means older plays may have fallen off the 50-play horizon. Its window
    starts at the cursor, or on a first poll at the listener's last play already in the lake (None if none)."""
    if len(items) < limit or page.get("next"):
        return None
    oldest = min(played_ms(i["played_at"]) for i in items)
    start: int | None = cursor_ms or None
    if start is None:
        from tunelake.curate.plays import read_user_plays

        plays = read_user_plays(lake, user_key)
        if plays.num_rows:
            ends = pc.cast(plays["ended_at"], "int64")
            before = ends.filter(pc.less(ends, oldest))
            start = int(pc.max(before).as_py()) if len(before) else None
    if start is not None and start >= oldest:
        return None
    return record_gap(lake, handle, user_key, start, oldest)


def list_gaps(lake: Lake, handle: str | None = None) -> list[Gap]:
    out = []
    for name in lake.listdir(GAPS_DIR):
        if name.endswith(".json") and not name.startswith("."):
            g = Gap(**lake.read_json(f"{GAPS_DIR}/{name}"))
            if handle is None or g.handle == handle:
                out.append(g)
    return sorted(out, key=lambda g: (g.handle, g.end_ms))


def export_span(lake: Lake, user_key: int) -> tuple[int, int] | None:
    """First and last end time (ms) of the listener's export plays, or None when they have none."""
    from tunelake.curate.plays import read_user_plays

    plays = read_user_plays(lake, user_key)
    if not plays.num_rows:
        return None
    mask = pc.fill_null(pc.is_in(plays["source"], value_set=pa.array(EXPORT_SOURCES)), False)
    ends = pc.cast(plays.filter(mask)["ended_at"], "int64")
    if not len(ends):
        return None
    lo, hi = pc.min_max(ends).values()
    return int(lo.as_py()), int(hi.as_py())


def with_status(lake: Lake, gaps: list[Gap]) -> list[Gap]:
    """Mark each gap closed when the listener's export plays reach over its window."""
    spans: dict[int, tuple[int, int] | None] = {}
    for g in gaps:
        if g.user_key not in spans:
            spans[g.user_key] = export_span(lake, g.user_key)
        span = spans[g.user_key]
        covered = span is not None and span[1] >= g.end_ms and (g.start_ms is None or span[0] <= g.start_ms)
        g.status = "closed" if covered else "open"
    return gaps


def gaps_table(lake: Lake) -> pa.Table:
    """Every recorded gap with its status, as the warehouse's meta_gap holds them."""
    gaps = with_status(lake, list_gaps(lake))
    ts = pa.timestamp("us")
    return pa.table({
        "gap_id": pa.array([g.gap_id for g in gaps], pa.string()),
        "user_key": pa.array([g.user_key for g in gaps], pa.int64()),
        "gap_start": pa.array([None if g.start_ms is None else g.start_ms * 1000 for g in gaps], pa.int64()).cast(ts),
        "gap_end": pa.array([g.end_ms * 1000 for g in gaps], pa.int64()).cast(ts),
        "detected_at": pa.array([datetime.fromisoformat(g.detected_at) for g in gaps], ts),
        "status": pa.array([g.status for g in gaps], pa.string()),
    })


def open_gaps(lake: Lake, handle: str | None = None) -> list[Gap]:
    return [g for g in with_status(lake, list_gaps(lake, handle)) if g.status == "open"]
