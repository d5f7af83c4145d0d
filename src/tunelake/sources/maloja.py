"""Maloja backups → play rows: the JSON Maloja writes (`{"maloja": {"export_time": …}, "scrobbles": [...]}`).

A scrobble is `time` (Unix seconds, UTC; taken as the track's start, as the Last.fm and ListenBrainz APIs Maloja
accepts define it), `track` (`artists` — a list, the first is the one Spotify credits as the track's artist —,
`title`, `album.albumtitle`, `length` in seconds or null), `duration` (seconds listened, when the client said) and
`origin` (the client). `ms_played` stays null as for every scrobble; `length` sets `ended_at`; every artist,
`duration`, `origin` and `extra` are kept in `additional_info`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tunelake.errors import InputError
from tunelake.sources.export import decode_json
from tunelake.sources.scrobbles import Reject, Scrobble, build, epoch_time, field, jtype, now_utc
from tunelake.sources.types import Parsed

SOURCE = "maloja"


def _read(r: dict[str, Any], now: datetime) -> Scrobble:
    at = field(r, "time", int, "time", required=True)
    track = field(r, "track", dict, "track", required=True)
    title = field(track, "title", str, "track.title", required=True, empty_ok=False)
    artists = field(track, "artists", list, "track.artists", required=True)
    for i, a in enumerate(artists):
        if not isinstance(a, str):
            raise Reject("wrong_type", f"field 'track.artists[{i}]' should be string, got {jtype(a)}")
    if not artists or not artists[0].strip():
        raise Reject("missing_field", "field 'track.artists' is empty")
    album = field(track, "album", dict, "track.album") or {}
    album_title = field(album, "albumtitle", str, "track.album.albumtitle")
    length = field(track, "length", int, "track.length")
    duration = field(r, "duration", int, "duration")
    for name, v in (("track.length", length), ("duration", duration)):
        if v is not None and v < 0:
            raise Reject("negative_duration", f"field '{name}' is negative ({v})")
    origin = field(r, "origin", str, "origin")
    info = {k: v for k, v in (("artists", artists if len(artists) > 1 else None), ("duration", duration),
                              ("origin", origin), ("extra", r.get("extra") or None)) if v is not None}
    return Scrobble(epoch_time(at, "time", now), artists[0], title, album_title or None,
                    length_ms=length * 1000 if length else None, additional_info=info or None)


def parse_maloja(data: bytes, name: str, *, now: datetime | None = None) -> Parsed:
    """A Maloja backup → play rows, `source = 'maloja'`."""
    doc, _ = decode_json(data, name)
    if not isinstance(doc, dict) or not isinstance(doc.get("scrobbles"), list):
        raise InputError(f"expected a Maloja backup (an object with a 'scrobbles' list), found a JSON {jtype(doc)}"
                         + (" without one" if isinstance(doc, dict) else ""), file=name)
    now = now or now_utc()
    return build(doc["scrobbles"], lambda r: _read(r, now), SOURCE, "maloja")
