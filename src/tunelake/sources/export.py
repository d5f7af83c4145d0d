"""Spotify privacy exports: decoding and parsing the listening files (finding them is `export_files`).

Parsing is column-wise: the JSON is decoded once with orjson and every field becomes an Arrow array in one pass;
only when a column holds a value of the wrong type do we look at its records one by one, so that a bad record is
quarantined with a reason while the valid records around it are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tunelake.curate.schemas import TS
from tunelake.errors import InputError
from tunelake.sources.export_files import (  # noqa: F401  (the names importers use from here)
    KIND_PATTERNS,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_LISTENING_FILES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL,
    ExportFile,
    find_export_files,
    kind_from_name,
    sniff_kind,
)

# --- parsing extended streaming history ----------------------------------------------------------------------

EXTENDED_FIELDS: dict[str, str] = {
    # field → expected JSON type: str | int | bool
    "ts": "str",
    "username": "str",
    "platform": "str",
    "ms_played": "int",
    "conn_country": "str",
    "ip_addr": "str",
    "ip_addr_decrypted": "str",
    "user_agent_decrypted": "str",
    "master_metadata_track_name": "str",
    "master_metadata_album_artist_name": "str",
    "master_metadata_album_album_name": "str",
    "spotify_track_uri": "str",
    "episode_name": "str",
    "episode_show_name": "str",
    "spotify_episode_uri": "str",
    "audiobook_title": "str",
    "audiobook_uri": "str",
    "audiobook_chapter_uri": "str",
    "audiobook_chapter_title": "str",
    "reason_start": "str",
    "reason_end": "str",
    "shuffle": "bool",
    "skipped": "bool",
    "offline": "bool",
    "offline_timestamp": "int",
    "incognito_mode": "bool",
}
REQUIRED = ("ts", "ms_played")
MIN_TS = datetime(2006, 1, 1)  # Spotify was founded in 2006; anything earlier is a broken clock


@dataclass
class Parsed:
    """Normalised rows of one file plus what was rejected and why."""

    rows: pa.Table
    read: int
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    unknown_fields: set[str] = field(default_factory=set)
    file_format: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.quarantine:
            counts[q["reason"]] = counts.get(q["reason"], 0) + 1
        return counts


def load_json_array(data: bytes, name: str) -> list[Any]:
    """Decode a file that must hold a JSON array; a file that is not gives one clear error."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        kind = "truncated JSON" if exc.pos >= len(data.rstrip()) - 1 else "not valid JSON"
        raise InputError(f"{kind} (at byte {exc.pos}: {exc.msg})", file=name) from None
    if not isinstance(doc, list):
        raise InputError(f"expected a JSON array of playback records, found a JSON {type(doc).__name__}", file=name)
    return doc


_TYPE_CHECK = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}
_ARROW = {"str": pa.string(), "int": pa.int64(), "bool": pa.bool_()}


def _column(records: list[dict], name: str, typ: str, bad: dict[int, tuple[str, str]]) -> pa.Array:
    """One field as an Arrow array; values of the wrong type mark their record bad (kept out of the array)."""
    values = [r.get(name) for r in records]
    try:
        if typ == "int" or typ == "bool":
            # pa.array would quietly turn True into 1 or 1 into True; check the types exactly first.
            check = _TYPE_CHECK[typ]
            if not all(v is None or check(v) for v in values):
                raise pa.ArrowInvalid("mixed types")
        return pa.array(values, _ARROW[typ])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        check = _TYPE_CHECK[typ]
        clean = []
        for i, v in enumerate(values):
            if v is None or check(v):
                clean.append(v)
            elif typ == "bool" and name == "skipped" and v in (0, 1) and not isinstance(v, bool):
                clean.append(bool(v))  # some export years write skipped as 0/1
            else:
                bad.setdefault(i, ("wrong_type", f"field '{name}' should be {typ}, got {type(v).__name__}"))
                clean.append(None)
        return pa.array(clean, _ARROW[typ])


def _uri_ids(uris: pa.Array, prefix: str, bad: dict[int, tuple[str, str]], field_name: str) -> pa.Array:
    """'spotify:track:ID' → 'ID'; a URI of another shape is a bad record."""
    valid = pc.fill_null(pc.starts_with(uris, prefix), True)
    if not pc.all(valid).as_py():
        for i, ok in enumerate(valid.to_pylist()):
            if not ok:
                bad.setdefault(i, ("bad_uri", f"field '{field_name}' is not a {prefix}… URI"))
    ids = pc.utf8_slice_codeunits(uris, len(prefix))
    return pc.if_else(pc.and_(valid, pc.greater(pc.utf8_length(ids), 0)), ids, pa.scalar(None, pa.string()))


def read_records(
    data: bytes, name: str, fields: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[Any], dict[int, tuple[str, str]], set[str]]:
    """A history file's JSON array as (records, original, bad, unknown fields), shared by every history layout.

    A record that is not an object is marked bad and read as `{}`, so that one stray value neither stops the file
    nor shifts the columns out of line with the record numbers; `original` keeps it as written, for quarantine.
    """
    records = load_json_array(data, name)
    bad: dict[int, tuple[str, str]] = {}
    for i, r in enumerate(records):
        if type(r) is not dict:
            bad[i] = ("not_an_object", f"record is a JSON {type(r).__name__}, not an object")
    original = records
    if bad:
        records = [r if type(r) is dict else {} for r in records]
    unknown: set[str] = set()
    expected = set(fields)
    for r in records:
        if not r.keys() <= expected:
            unknown |= r.keys() - expected
    return records, original, bad, unknown


def drop_bad_records(
    rows: pa.Table, original: list[Any], bad: dict[int, tuple[str, str]]
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """(good rows, quarantine items): a bad record leaves the rows but is kept, as written, with its reason, so
    that read = accepted + duplicates + quarantined still holds for the file."""
    quarantine = []
    if bad:
        rows = rows.filter(pa.array([i not in bad for i in range(len(original))]))
        for i in sorted(bad):
            reason, message = bad[i]
            quarantine.append({"record_no": i, "reason": reason, "message": message, "record": original[i]})
    return rows, quarantine


def parse_extended(data: bytes, name: str, *, now: datetime | None = None, fast: bool = True,
                   user_key: int | None = None) -> Parsed:
    """Extended streaming history (Streaming_History_Audio/Video_*, endsong_*) → normalised play rows (with their
    playback ids when the fast path reads them and `user_key` is given)."""
    from tunelake.sources.extended_fast import parse_extended_fast

    try:
        parsed = parse_extended_fast(data, name, EXTENDED_FIELDS, now=now, user_key=user_key) if fast else None
    except (UnicodeError, ValueError, OverflowError):
        parsed = None  # the fast path is an optimisation: whatever it cannot decode, the exact path below decides
    if parsed is not None:
        return parsed
    records, original, bad, unknown = read_records(data, name, EXTENDED_FIELDS)
    n = len(records)
    legacy = any("ip_addr_decrypted" in r or "username" in r for r in records[:50])
    media = "video" if "Streaming_History_Video" in name else "audio"

    cols = {f: _column(records, f, t, bad) for f, t in EXTENDED_FIELDS.items()}

    for req in REQUIRED:
        missing = pc.is_null(cols[req])
        if pc.any(missing).as_py():
            for i, m in enumerate(missing.to_pylist()):
                if m and i not in bad:
                    present = req in records[i]
                    bad[i] = ("wrong_type" if present else "missing_field",
                              f"field '{req}' is null" if present else f"field '{req}' is missing")

    ts_raw = cols["ts"]
    ended_at = pc.strptime(ts_raw, format="%Y-%m-%dT%H:%M:%SZ", unit="ms", error_is_null=True)
    bad_ts = pc.and_(pc.is_null(ended_at), pc.is_valid(ts_raw))
    if pc.any(bad_ts).as_py():
        # Tolerate fractional seconds or offsets that some tools write back; only then give up.
        for i, b in enumerate(bad_ts.to_pylist()):
            if b and i not in bad:
                bad[i] = ("bad_timestamp", f"field 'ts' is not an ISO-8601 UTC time: {records[i].get('ts')!r}")
    now = now or datetime.utcnow()
    ended_at = ended_at.cast(TS)
    out_of_range = pc.or_(pc.less(ended_at, pa.scalar(MIN_TS, TS)), pc.greater(ended_at, pa.scalar(now, TS)))
    if pc.any(out_of_range).as_py():
        for i, b in enumerate(out_of_range.to_pylist()):
            if b and i not in bad:
                bad[i] = ("ts_out_of_range", f"field 'ts' {records[i].get('ts')} is before 2006 or in the future")
    neg = pc.less(cols["ms_played"], 0)
    if pc.any(neg).as_py():
        for i, b in enumerate(neg.to_pylist()):
            if b and i not in bad:
                bad[i] = ("negative_ms_played", f"field 'ms_played' is negative ({records[i].get('ms_played')})")

    track_id = _uri_ids(cols["spotify_track_uri"], "spotify:track:", bad, "spotify_track_uri")
    episode_id = _uri_ids(cols["spotify_episode_uri"], "spotify:episode:", bad, "spotify_episode_uri")
    chapter_id = _uri_ids(cols["audiobook_chapter_uri"], "spotify:", bad, "audiobook_chapter_uri")
    audiobook_id = _uri_ids(cols["audiobook_uri"], "spotify:", bad, "audiobook_uri")

    # offline_timestamp: milliseconds in older exports, seconds in newer ones; 0 means "none".
    off = cols["offline_timestamp"]
    off_valid = pc.and_(pc.is_valid(off), pc.greater(off, 0))
    off_ms = pc.if_else(pc.greater(off, 100_000_000_000), off, pc.multiply(off, 1000))
    offline_at = pc.if_else(off_valid, off_ms, pa.scalar(None, pa.int64())).cast(pa.timestamp("ms"))

    content = pc.case_when(
        pc.make_struct(pc.is_valid(track_id), pc.is_valid(episode_id),
                       pc.or_(pc.is_valid(chapter_id), pc.is_valid(audiobook_id))),
        pa.scalar("track"), pa.scalar("episode"), pa.scalar("audiobook"), pa.scalar("unknown"),
    )

    ip = cols["ip_addr"] if not legacy else pc.coalesce(cols["ip_addr_decrypted"], cols["ip_addr"])
    rows = pa.table(
        {
            "ended_at": ended_at,
            "ts_precision": pa.repeat("s", n) if n else pa.array([], pa.string()),
            "ms_played": cols["ms_played"],
            "content_type": content,
            "media_type": pa.array([media] * n, pa.string()),
            "track_id": track_id,
            "track_name": cols["master_metadata_track_name"],
            "artist_name": cols["master_metadata_album_artist_name"],
            "album_name": cols["master_metadata_album_album_name"],
            "episode_id": episode_id,
            "episode_name": cols["episode_name"],
            "show_name": cols["episode_show_name"],
            "audiobook_id": audiobook_id,
            "audiobook_title": cols["audiobook_title"],
            "chapter_id": chapter_id,
            "chapter_title": cols["audiobook_chapter_title"],
            "reason_start": cols["reason_start"],
            "reason_end": cols["reason_end"],
            "shuffle": cols["shuffle"],
            "skipped": cols["skipped"],
            "offline": cols["offline"],
            "offline_at": offline_at,
            "incognito": cols["incognito_mode"],
            "platform": cols["platform"],
            "conn_country": cols["conn_country"],
            "ip_addr": ip,
            "user_agent": cols["user_agent_decrypted"],
            "username": cols["username"],
            "source": pa.array(["extended"] * n, pa.string()),
            "record_no": pa.array(range(n), pa.int32()),
        }
    )
    rows, quarantine = drop_bad_records(rows, original, bad)
    return Parsed(rows, n, quarantine, unknown, "endsong" if legacy else "extended")


PARSERS: dict[str, Callable[..., Parsed]] = {
    "extended_audio": parse_extended,
    "extended_video": parse_extended,
    "extended_legacy": parse_extended,
}


def source_of_kind(kind: str) -> str:
    """Lake source folder for a file kind."""
    return kind.split("_", 1)[0]
