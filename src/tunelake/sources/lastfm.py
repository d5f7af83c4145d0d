"""Last.fm scrobbles → play rows, in the two common layouts.

* JSON pages of `user.getRecentTracks` (`{"recenttracks": {"track": [...], "@attr": {...}}}`), one page or an array
  of pages, as the backup tools save them. `date.uts` is Unix seconds as a string (UTC, the track's start); the
  entry with `@attr.nowplaying` has no date and is not a scrobble (it is listed again, with its date, once
  scrobbled), so it is counted as `not_a_scrobble`. Artist and album are `{"#text", "mbid"}` (`{"name", …}` with
  `extended=1`); mbids may be "".
* CSV of the "lastfm-to-csv" web tool (benjaminbenben.com/lastfm-to-csv): `artist,album,track,date`, no header
  (older versions wrote `artist,album,name,date`), date `31 Jan 2021 12:34` or `"31 Jan 2021, 12:34"`: UTC to the
  minute (`ts_precision = 'min'`). Also the `uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid`
  layout of other backup tools (Unix seconds).

The Last.fm username (`@attr.user`) is never kept.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from tunelake.errors import InputError
from tunelake.sources.export import decode_json
from tunelake.sources.scrobbles import (
    CSV_DATE,
    CSV_HEADERS,
    Reject,
    Scrobble,
    build,
    check_range,
    epoch_time,
    field,
    mbid,
    now_utc,
)
from tunelake.sources.types import Parsed

SOURCE = "lastfm"


def _name(obj: dict[str, Any], key: str, path: str, required: bool) -> tuple[str | None, str | None]:
    """(name, mbid) of an artist/album entry: {"#text": …, "mbid": …} or, with extended=1, {"name": …}."""
    v = field(obj, key, dict, path, required=required)
    if v is None:
        return None, None
    text_key = "#text" if "#text" in v or "name" not in v else "name"
    name = field(v, text_key, str, f"{path}.{text_key}", required=required, empty_ok=not required)
    return (name or None), mbid(v.get("mbid"), f"{path}.mbid")


def _read_track(r: dict[str, Any], now: datetime) -> Scrobble | None:
    attr = field(r, "@attr", dict, "@attr") or {}
    if attr.get("nowplaying") == "true" and "date" not in r:
        return None
    date = field(r, "date", dict, "date", required=True)
    uts = field(date, "uts", str, "date.uts", required=True)
    if not uts.isdigit():
        raise Reject("bad_timestamp", f"field 'date.uts' is not Unix seconds: {uts!r}")
    artist, artist_mbid = _name(r, "artist", "artist", True)
    album, album_mbid = _name(r, "album", "album", False)
    track = field(r, "name", str, "name", required=True, empty_ok=False)
    return Scrobble(epoch_time(int(uts), "date.uts", now), artist or "", track, album,
                    recording_mbid=mbid(r.get("mbid"), "mbid"), release_mbid=album_mbid,
                    artist_mbids=[artist_mbid] if artist_mbid else None)


def _tracks(doc: Any, name: str) -> list[Any]:
    pages = doc if isinstance(doc, list) else [doc]
    out: list[Any] = []
    for i, page in enumerate(pages):
        rt = page.get("recenttracks") if isinstance(page, dict) else None
        if not isinstance(rt, dict):
            raise InputError(f"page {i} is not a user.getRecentTracks response (no 'recenttracks' object)", file=name)
        tracks = rt.get("track", [])
        out.extend(tracks if isinstance(tracks, list) else [tracks])  # a one-track page holds the object itself
    return out


def parse_lastfm_json(data: bytes, name: str, *, now: datetime | None = None) -> Parsed:
    """Pages of `user.getRecentTracks` → play rows, `source = 'lastfm'`."""
    doc, _ = decode_json(data, name)
    now = now or now_utc()
    return build(_tracks(doc, name), lambda r: _read_track(r, now), SOURCE, "lastfm-json")


# --- CSV -------------------------------------------------------------------------------------------------------

_COLUMNS = {"lastfm-to-csv": ("artist", "album", "track", "date"),
            "lastfm-uts": ("uts", "utc_time", "artist", "artist_mbid", "album", "album_mbid", "track", "track_mbid")}


def _read_row(r: dict[str, Any], layout: str, now: datetime) -> Scrobble:
    artist = (r.get("artist") or "").strip()
    track = (r.get("track") or "").strip()
    if not artist:
        raise Reject("missing_field", "field 'artist' is empty")
    if not track:
        raise Reject("missing_field", "field 'track' is empty")
    album = (r.get("album") or "").strip() or None
    if layout == "lastfm-uts":
        uts = (r.get("uts") or "").strip()
        if not uts.isdigit():
            raise Reject("bad_timestamp", f"field 'uts' is not Unix seconds: {uts!r}")
        return Scrobble(epoch_time(int(uts), "uts", now), artist, track, album,
                        recording_mbid=mbid(r.get("track_mbid"), "track_mbid"),
                        release_mbid=mbid(r.get("album_mbid"), "album_mbid"),
                        artist_mbids=[m] if (m := mbid(r.get("artist_mbid"), "artist_mbid")) else None)
    raw = (r.get("date") or "").strip()
    if not CSV_DATE.match(raw):
        raise Reject("bad_timestamp", f"field 'date' is not 'DD Mon YYYY HH:MM': {raw!r}")
    try:
        t = datetime.strptime(raw.replace(",", ""), "%d %b %Y %H:%M")
    except ValueError:
        raise Reject("bad_timestamp", f"field 'date' is not a date: {raw!r}") from None
    return Scrobble(check_range(t, "date", now), artist, track, album, precision="min")


def parse_lastfm_csv(data: bytes, name: str, *, now: datetime | None = None) -> Parsed:
    """A Last.fm scrobble CSV → play rows, `source = 'lastfm'`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: invalid byte at byte {exc.start}", file=name) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return build([], lambda r: None, SOURCE, "lastfm-to-csv")
    header = tuple(c.strip().lower() for c in rows[0])
    layout = CSV_HEADERS.get(header, "lastfm-to-csv")
    if header in CSV_HEADERS:
        rows = rows[1:]
    columns = _COLUMNS[layout]
    now = now or now_utc()
    records: list[Any] = []
    wrong: dict[int, str] = {}
    for i, row in enumerate(r for r in rows if any(c.strip() for c in r)):
        if len(row) != len(columns):
            wrong[i] = f"row has {len(row)} fields, the {layout} layout has {len(columns)}"
        records.append(dict(zip(columns, row, strict=False)) if len(row) == len(columns) else row)

    def read_one(r: Any) -> Scrobble:
        return _read_row(r, layout, now)

    if not wrong:
        return build(records, read_one, SOURCE, layout)
    parsed = build([{} if i in wrong else r for i, r in enumerate(records)], read_one, SOURCE, layout)
    parsed.quarantine = sorted([q for q in parsed.quarantine if q["record_no"] not in wrong] + [
        {"record_no": i, "reason": "wrong_columns", "message": m, "record": records[i]} for i, m in wrong.items()],
        key=lambda q: q["record_no"])
    return parsed
