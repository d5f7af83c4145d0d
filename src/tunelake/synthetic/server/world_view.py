"""A synthetic world directory as the Web API sees it, so that the API view of a listener agrees with their exports.

The exports have second precision and may list one playback twice; the API has millisecond `played_at` values that
are unique per listener (they are its paging cursors). Saved tracks and playlists come from the same export files,
and the catalogue from `catalog/*.parquet`. Nothing here knows about HTTP.
"""

from __future__ import annotations

import csv
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def iso_ms(ms: int) -> str:
    """`played_at` as Spotify writes it: UTC with milliseconds."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_s(dt: datetime) -> str:
    """`added_at` as Spotify writes it: UTC to the second."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str) -> datetime:
    """Export timestamps, with or without a zone (naive ones are UTC, as in every export format)."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def split_ids(value: Any) -> list[str]:
    """The catalogue stores lists (artist ids, genres) as `;`-joined strings."""
    return [v for v in str(value).split(";") if v] if value else []


def base62_id(seed: str) -> str:
    """A deterministic 22-character base62 id (the shape of Spotify ids)."""
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    out = []
    for _ in range(22):
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return "".join(out)


def uri_id(uri: Any, kind: str) -> str | None:
    """The id in `spotify:<kind>:<id>`, or None for anything else (local files, episodes, junk)."""
    prefix = f"spotify:{kind}:"
    return uri[len(prefix) :] if isinstance(uri, str) and uri.startswith(prefix) else None


@dataclass
class Listener:
    handle: str
    country: str | None
    plays: list[tuple[int, str]]  # (played_at ms, track_id), ascending
    saved: list[tuple[str, str]]  # (added_at iso, track_id), newest first
    playlists: list[dict[str, Any]]  # {id, name, description, items: [(added_at iso, track_id)], snapshot}


class World:
    """Read-only catalogue and per-listener data of a synthetic world directory (loaded lazily per listener)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "exports").is_dir():
            raise FileNotFoundError(f"{self.root}: not a synthetic world (no exports/ folder)")
        info_path = self.root / "world.json"
        self.info: dict[str, Any] = json.loads(info_path.read_text()) if info_path.exists() else {}
        cat = self.root / "catalog"
        self.tracks = self._load(cat / "tracks.parquet", "track_id")
        self.albums = self._load(cat / "albums.parquet", "album_id")
        self.artists = self._load(cat / "artists.parquet", "artist_id")
        self.album_tracks: dict[str, list[str]] = {}
        for tid in sorted(self.tracks):
            self.album_tracks.setdefault(self.tracks[tid].get("album_id") or "", []).append(tid)
        self.track_number = {tid: i + 1 for ids in self.album_tracks.values() for i, tid in enumerate(ids)}
        self.handles = sorted(p.name for p in (self.root / "exports").iterdir() if p.is_dir())
        self.truth: dict[str, dict[str, str]] = {}
        truth = self.root / "truth" / "listeners.csv"
        if truth.exists():
            with truth.open(newline="") as fh:
                self.truth = {row["handle"]: row for row in csv.DictReader(fh)}
        self._listeners: dict[str, Listener] = {}
        self._lock = threading.Lock()
        self._end: datetime | None = None

    @staticmethod
    def _load(path: Path, key: str) -> dict[str, dict[str, Any]]:
        if not path.exists():
            return {}
        return {row[key]: row for row in pq.read_table(path).to_pylist()}

    @property
    def end(self) -> datetime:
        """The world's end date: from world.json when it says, else the last play of any listener."""
        if self._end is None:
            params = {**self.info, **(self.info.get("params") or {})}
            for key in ("end", "end_date", "end_ts", "until"):
                if params.get(key):
                    try:
                        self._end = parse_ts(str(params[key]))
                        if len(str(params[key])) <= 10:
                            self._end += timedelta(days=1)
                        break
                    except ValueError:
                        pass
            if self._end is None:
                last = max((lst.plays[-1][0] for h in self.handles if (lst := self.listener(h)).plays), default=0)
                self._end = datetime.fromtimestamp(last / 1000, UTC) if last else datetime.now(UTC)
        return self._end

    def listener(self, handle: str) -> Listener:
        """The same object on every call, so playlists created or changed through the API stay changed."""
        with self._lock:
            if handle not in self._listeners:
                self._listeners[handle] = _read_listener(self.root / "exports" / handle, handle, self.truth)
            return self._listeners[handle]


def _read_listener(base: Path, handle: str, truth: dict[str, dict[str, str]]) -> Listener:
    plays = _read_plays(base, handle)
    end_guess = datetime.fromtimestamp(plays[-1][0] / 1000, UTC) if plays else datetime(2024, 1, 1, tzinfo=UTC)
    country = (truth.get(handle) or {}).get("country") or None
    return Listener(handle, country, plays, _read_saved(base, end_guess), _read_playlists(base, handle, end_guess))


def _read_plays(base: Path, handle: str) -> list[tuple[int, str]]:
    plays: list[tuple[int, str]] = []
    files = sorted(base.glob("**/Streaming_History_Audio_*.json")) + sorted(base.glob("**/endsong*.json"))
    for path in files:
        for rec in json.loads(path.read_text(encoding="utf-8")):
            tid = uri_id(rec.get("spotify_track_uri"), "track")
            if not tid or not rec.get("ts"):
                continue
            ts = parse_ts(rec["ts"])
            # Exports have second precision; the API has milliseconds: add a deterministic sub-second part.
            frac = int.from_bytes(hashlib.sha256(f"{handle}|{rec['ts']}|{tid}".encode()).digest()[:2], "big")
            plays.append((int(ts.timestamp()) * 1000 + frac % 1000, tid))
    plays = sorted(set(plays))  # an export may list one playback twice; the API does not
    # One played_at per millisecond at most (the API's cursors are played_at values).
    dedup: list[tuple[int, str]] = []
    for ms, tid in plays:
        if dedup and ms <= dedup[-1][0]:
            ms = dedup[-1][0] + 1
        dedup.append((ms, tid))
    return dedup


def _read_saved(base: Path, end_guess: datetime) -> list[tuple[str, str]]:
    saved: list[tuple[str, str]] = []
    lib = next(iter(sorted(base.glob("**/YourLibrary.json"))), None)
    if lib is not None:
        items = json.loads(lib.read_text(encoding="utf-8")).get("tracks") or []
        n = len(items)
        for i, item in enumerate(items):
            tid = uri_id(item.get("uri"), "track")
            if not tid:
                continue
            when = item.get("addedAt") or item.get("added_at") or item.get("addedDate")
            # An undated library keeps its order (oldest first), a day apart up to the last play: stable paging.
            added = parse_ts(when) if when else end_guess - timedelta(days=n - i)
            saved.append((iso_s(added), tid))
    saved.sort(reverse=True)
    return saved


def _read_playlists(base: Path, handle: str, end_guess: datetime) -> list[dict[str, Any]]:
    playlists: list[dict[str, Any]] = []
    for path in sorted(base.glob("**/Playlist*.json")):
        for pl in json.loads(path.read_text(encoding="utf-8")).get("playlists") or []:
            entries = []
            for item in pl.get("items") or []:
                tid = uri_id((item.get("track") or {}).get("trackUri"), "track")
                if not tid:
                    continue
                added = item.get("addedDate")
                entries.append((iso_s(parse_ts(added)) if added else iso_s(end_guess), tid))
            playlists.append(
                {
                    "id": base62_id(f"playlist|{handle}|{pl.get('name')}|{len(playlists)}"),
                    "name": pl.get("name") or "",
                    "description": pl.get("description") or "",
                    "items": entries,
                    "snapshot": 1,
                    "public": False,
                }
            )
    return playlists
