"""What every scrobble format shares: checking one record's values, building the play rows, telling the formats
apart by their content.

A scrobble is a claim by a scrobbler (Last.fm, ListenBrainz, Maloja and their clients) that a track was listened to
by its rule: at least half the track or 4 minutes. So scrobbles carry no `ms_played` (null), a start time
(`listened_at`, which the services define as the moment the track started), names and sometimes MusicBrainz ids.
Each format module (`listenbrainz`, `lastfm`, `maloja`) turns its records into `Scrobble`s or rejections; this
module turns those into curated play rows, so the checks and the row shape are the same for all of them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from tunelake.sources.types import TS, Parsed, conform

# ListenBrainz refuses listens before Last.fm existed (2002-10-01, its LISTEN_MINIMUM_TS); so do we, for every
# scrobble format: an earlier time is a broken clock or a value in the wrong unit.
MIN_LISTENED_AT = datetime(2002, 10, 1)
_MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SPOTIFY_TRACK = re.compile(r"^(?:https://open\.spotify\.com/track/|spotify:track:)([0-9A-Za-z]{22})$")


class Reject(Exception):
    """One record is refused: `reason` is a quarantine reason code, the message names the field."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass
class Scrobble:
    """One valid scrobble, as a format module read it."""

    listened_at: datetime | None  # UTC, naive: the start; None when the source gives only the end (`ended`)
    artist_name: str
    track_name: str
    album_name: str | None = None
    precision: str = "s"  # s | min (the lastfm-to-csv dates)
    length_ms: int | None = None  # the track's length, when the source gives it: ended_at = listened_at + length
    track_id: str | None = None  # a Spotify id the source carries (ListenBrainz additional_info.spotify_id)
    recording_mbid: str | None = None
    release_mbid: str | None = None
    artist_mbids: list[str] | None = None
    additional_info: dict[str, Any] | None = None
    ended: datetime | None = None  # the end, when the source gives it (ListenBrainz listens that came from Spotify)


def jtype(v: Any) -> str:
    """The JSON name of a value's type, for 'should be string, got number'."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object" if isinstance(v, dict) else type(v).__name__


def field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], path: str, *, required: bool = False,
          empty_ok: bool = True) -> Any:
    """`obj[name]` when it has the JSON type `kind` (None when absent or null and not required). Nothing is
    converted: "123" is not a number, 1 is not a string, true is not a number."""
    v = obj.get(name)
    if type(v) is kind:  # the usual case, decided at once (type(), not isinstance: True is not an int here)
        if kind is str and not empty_ok and not v.strip():
            raise Reject("missing_field", f"field '{path}' is empty")
        return v
    if name not in obj:
        if required:
            raise Reject("missing_field", f"field '{path}' is missing")
        return None
    v = obj[name]
    if v is None:
        if required:
            raise Reject("wrong_type", f"field '{path}' is null")
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(v, bool) and bool not in kinds) or not isinstance(v, kinds):
        want = " or ".join({str: "string", int: "integer", dict: "object", list: "array", float: "number",
                            bool: "boolean"}[k] for k in kinds)
        raise Reject("wrong_type", f"field '{path}' should be {want}, got {jtype(v)}")
    if isinstance(v, str) and not empty_ok and not v.strip():
        raise Reject("missing_field", f"field '{path}' is empty")
    return v


def epoch_time(seconds: int, path: str, now: datetime) -> datetime:
    """A UTC time from Unix seconds, refused when before Last.fm existed or in the future (a value in ms or ns
    lands there)."""
    if seconds < 0 or seconds > 2**40:
        raise Reject("ts_out_of_range", f"field '{path}' {seconds} is not a time in Unix seconds")
    t = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return check_range(t, path, now)


def check_range(t: datetime, path: str, now: datetime) -> datetime:
    if t < MIN_LISTENED_AT or t > now:
        raise Reject("ts_out_of_range", f"field '{path}' {t:%Y-%m-%d %H:%M:%S} is before 2002-10 or in the future")
    return t


def mbid(v: Any, path: str) -> str | None:
    """A MusicBrainz id (lower-case UUID); '' is none (Last.fm writes empty mbids); anything else is refused."""
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise Reject("wrong_type", f"field '{path}' should be string, got {jtype(v)}")
    if not _MBID.match(v.strip().lower()):
        raise Reject("bad_mbid", f"field '{path}' is not a MusicBrainz id: {v!r}")
    return v.strip().lower()


def spotify_track_id(v: Any, path: str) -> str | None:
    """The Spotify id in a track URL or URI; a value of another shape is not a Spotify track (None)."""
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise Reject("wrong_type", f"field '{path}' should be string, got {jtype(v)}")
    m = _SPOTIFY_TRACK.match(v.strip())
    return m.group(1) if m else None


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def build(records: list[Any], read_one: Callable[[Any], Scrobble | None], source: str, file_format: str,
          *, quarantine_record: Callable[[Any], Any] = lambda r: r) -> Parsed:
    """Play rows of a file's records. `read_one` gives a Scrobble, raises `Reject`, or returns None for an entry
    that is not a scrobble at all and is counted as such (Last.fm's "now playing" entry)."""
    rows: list[Scrobble] = []
    numbers: list[int] = []
    quarantine: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        try:
            if not isinstance(r, dict):
                raise Reject("not_an_object", f"record is a JSON {jtype(r)}, not an object")
            s = read_one(r)
            if s is None:
                raise Reject("not_a_scrobble", "a 'now playing' entry: not scrobbled (yet), it has no time")
        except Reject as rej:
            quarantine.append({"record_no": i, "reason": rej.reason, "message": rej.message,
                               "record": quarantine_record(r)})
            continue
        rows.append(s)
        numbers.append(i)
    return Parsed(rows_table(rows, numbers, source), len(records), quarantine, set(), file_format)


def rows_table(rows: list[Scrobble], numbers: list[int], source: str) -> pa.Table:
    """Curated play rows (columns of `sources.types.PLAYS`) of valid scrobbles."""
    n = len(rows)
    started = [s.listened_at for s in rows]
    ended = [s.ended or (s.listened_at if not s.length_ms else s.listened_at + timedelta(milliseconds=s.length_ms))
             for s in rows]
    return conform(pa.table({
        "ended_at": pa.array(ended, TS),
        "listened_at": pa.array(started, TS),
        "ts_precision": pa.array([s.precision for s in rows], pa.string()),
        "ms_played": pa.nulls(n, pa.int64()),
        "content_type": pa.array(["track"] * n, pa.string()),
        "media_type": pa.array(["audio"] * n, pa.string()),
        "track_id": pa.array([s.track_id for s in rows], pa.string()),
        "track_name": pa.array([s.track_name for s in rows], pa.string()),
        "artist_name": pa.array([s.artist_name for s in rows], pa.string()),
        "album_name": pa.array([s.album_name for s in rows], pa.string()),
        "recording_mbid": pa.array([s.recording_mbid for s in rows], pa.string()),
        "release_mbid": pa.array([s.release_mbid for s in rows], pa.string()),
        "artist_mbids": pa.array([";".join(s.artist_mbids) if s.artist_mbids else None for s in rows],
                                 pa.string()),
        "additional_info": pa.array([json.dumps(s.additional_info, ensure_ascii=False, sort_keys=True)
                                     if s.additional_info else None for s in rows], pa.string()),
        "source": pa.array([source] * n, pa.string()),
        "record_no": pa.array(numbers, pa.int32()),
    }))


# --- telling the formats apart by content -----------------------------------------------------------------------

SCROBBLE_SUFFIXES = (".json", ".jsonl", ".csv")


def sniff_scrobble_kind(head: bytes) -> str | None:
    """listenbrainz | lastfm_json | lastfm_csv | maloja, from a file's first bytes; None for anything else.

    By content, not name: a ListenBrainz export's listens are `listens/2024/3.jsonl` (old exports: one JSON array),
    Last.fm pages are whatever a tool called them, and Maloja names its backups by date."""
    text = head[:8192].decode("utf-8", "ignore").lstrip("\ufeff").lstrip()
    if not text:
        return None
    if text[0] in "[{":
        if '"listened_at"' in text and '"track_metadata"' in text:
            return "listenbrainz"
        if '"recenttracks"' in text:
            return "lastfm_json"
        if '"scrobbles"' in text and ('"maloja"' in text or '"time"' in text):
            return "maloja"
        return None
    return "lastfm_csv" if looks_like_csv(text) else None


# lastfm-to-csv dates: "31 Jan 2021 12:34" (older) or "31 Jan 2021, 12:34" (quoted, newer); UTC, to the minute.
CSV_DATE = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4},? \d{2}:\d{2}$")
CSV_HEADERS = {
    ("artist", "album", "name", "date"): "lastfm-to-csv",
    ("artist", "album", "track", "date"): "lastfm-to-csv",
    ("uts", "utc_time", "artist", "artist_mbid", "album", "album_mbid", "track", "track_mbid"): "lastfm-uts",
}


def looks_like_csv(text: str) -> bool:
    """A Last.fm scrobble CSV: one of the known headers, or (lastfm-to-csv writes none) a first row of four
    fields ending in a lastfm-to-csv date."""
    try:
        first = next(csv.reader(io.StringIO(text.splitlines()[0])))
    except (StopIteration, csv.Error, IndexError):
        return False
    if tuple(c.strip().lower() for c in first) in CSV_HEADERS:
        return True
    return len(first) == 4 and bool(CSV_DATE.match(first[3].strip()))
