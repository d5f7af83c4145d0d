"""Spotify privacy exports: decoding and parsing the listening files (finding them is `export_files`).

Parsing is column-wise: the JSON is decoded once with orjson and every field becomes an Arrow array in one pass;
only when a column holds a value of the wrong type do we look at its records one by one, so that a bad record is
quarantined with a reason while the valid records around it are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

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
from tunelake.sources.types import TS, Parsed

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


class BadNumber:
    """A number Python's json reads but no column can hold as written: NaN, ±Infinity, a float beyond a double
    (1e999), an integer beyond 64 bits. It is kept (never turned into a float or null) so that the record holding it
    is quarantined and shown as written; `str()` is how a quarantine line shows it."""

    __slots__ = ("allowed", "text", "what")

    def __init__(self, text: str, what: str, allowed: bool) -> None:
        self.text, self.what, self.allowed = text, what, allowed  # allowed: valid JSON, only out of range

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def _constant(text: str) -> BadNumber:
    return BadNumber(text, text, False)


def _float(text: str) -> float | BadNumber:
    v = float(text)
    return v if math.isfinite(v) else BadNumber(text, f"a number out of range ({text})", False)


def _int(text: str) -> int | BadNumber:
    v = int(text)
    # orjson reads up to 64 bits unsigned: integers it could keep are kept, so both decoders give the same records.
    return v if -(2**63) <= v < 2**64 else BadNumber(text, "an integer out of range", True)


def _lenient(text: str) -> Any:
    return json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)


def decode_json(data: bytes, name: str) -> tuple[Any, bool]:
    """(document, strict). orjson decodes every well-formed file. A file it refuses is decoded again by Python's
    json, which reads the NaN, Infinity and lone surrogates some tools write, so that only the records holding them
    are quarantined instead of the whole file; `strict` is then False and values may be `BadNumber`s or strings
    with surrogates (see `not_json`). A file that is not UTF-8 is named as such, with the offset of the first
    invalid byte: orjson reports every encoding error at byte 0."""
    bom = 3 if data[:3] == b"\xef\xbb\xbf" else 0
    body = data[bom:] if bom else data
    try:
        return orjson.loads(body), True
    except orjson.JSONDecodeError as exc:
        error = exc
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: invalid byte 0x{body[exc.start]:02x} at byte {exc.start + bom} (Spotify "
                         "writes UTF-8; was the file re-saved in another encoding?)", file=name) from None
    try:
        return _lenient(text), False
    except (ValueError, RecursionError):
        at = len(text[: error.pos].encode("utf-8")) + bom  # orjson counts characters, the message says bytes
        kind = "truncated JSON" if at >= len(data.rstrip()) - 1 else "not valid JSON"
        raise InputError(f"{kind} (at byte {at}: {error.msg})", file=name) from None


def not_json(value: Any) -> str | None:
    """What `value` holds (at any depth) that JSON text has no place for, as the end of a message; None if nothing.
    Only documents decoded leniently (`decode_json` → strict False) can hold such values."""
    if isinstance(value, BadNumber):
        return None if value.allowed else (f"{value.text}, which JSON does not allow" if value.what == value.text
                                           else value.what)
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"a lone UTF-16 surrogate ({value[exc.start]!a}), which is not text"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = not_json(k) or not_json(v)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = not_json(v)
            if found:
                return found
    return None


def load_json_array(data: bytes, name: str) -> tuple[list[Any], bool]:
    """(records, strict) of a file that must hold a JSON array; a file that does not gives one clear error."""
    doc, strict = decode_json(data, name)
    if not isinstance(doc, list):
        raise InputError(f"expected a JSON array of playback records, found a JSON {type(doc).__name__}", file=name)
    return doc, strict


def _int64(v: Any) -> bool:
    return type(v) is int and -(2**63) <= v < 2**63  # type(), not isinstance: True is an int to Python


_TYPE_CHECK = {"str": lambda v: type(v) is str, "int": _int64, "bool": lambda v: type(v) is bool}
_ARROW = {"str": pa.string(), "int": pa.int64(), "bool": pa.bool_()}


def got(v: Any, typ: str, written_as_int: Callable[[], bool] = lambda: False) -> str:
    """What a value of the wrong type is, for 'should be int, got …'. orjson reads an integer beyond 64 bits as a
    float: such a float is reported as the integer it was written as when `written_as_int` says so."""
    if isinstance(v, BadNumber):
        return v.what
    if typ == "int" and type(v) is int:
        return "an integer out of range"
    if typ == "int" and type(v) is float and v.is_integer() and abs(v) >= 2**63 and written_as_int():
        return "an integer out of range"
    return type(v).__name__


def exact_integers(data: bytes) -> Callable[[int, str], bool]:
    """`(record_no, field) → was it written as an integer?`, by decoding the file again, once and only if asked,
    with Python's json (which keeps integers of any size as written)."""
    cache: list[Any] = []

    def written_as_int(i: int, name: str) -> bool:
        if not cache:
            try:
                cache.append(_lenient(data.decode("utf-8-sig")))
            except (ValueError, RecursionError):
                cache.append([])
        records = cache[0]
        r = records[i] if i < len(records) else None
        v = r.get(name) if isinstance(r, dict) else None
        return type(v) is int or (isinstance(v, BadNumber) and v.allowed)

    return written_as_int


def _column(records: list[dict], name: str, typ: str, bad: dict[int, tuple[str, str]],
            written_as_int: Callable[[int, str], bool] | None = None) -> pa.Array:
    """One field as an Arrow array; values of the wrong type mark their record bad (kept out of the array).
    Nothing is converted: 1.0 is not an int, 1 is not a bool (but `skipped` may be 0/1, as some export years write
    it), "5" is not a number, 5 is not a string."""
    values = [r.get(name) for r in records]
    check = _TYPE_CHECK[typ]
    try:
        # pa.array would quietly turn True into 1 or 1 into True; check the types exactly first.
        if typ in ("int", "bool") and not all(v is None or check(v) for v in values):
            raise pa.ArrowInvalid("mixed types")
        return pa.array(values, _ARROW[typ])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        clean = []
        for i, v in enumerate(values):
            if v is None or check(v):
                clean.append(v)
            elif typ == "bool" and name == "skipped" and type(v) is int and v in (0, 1):
                clean.append(bool(v))  # some export years write skipped as 0/1
            else:
                exact = (lambda i=i: written_as_int(i, name)) if written_as_int else (lambda: False)
                bad.setdefault(i, ("wrong_type", f"field '{name}' should be {typ}, got {got(v, typ, exact)}"))
                clean.append(None)
        return pa.array(clean, _ARROW[typ])


def parse_times(raw: pa.Array, fmt: str) -> pa.Array:
    """Strings in exactly `fmt` → timestamps (s); anything else → null. Arrow's strptime reads 2023-02-30 as
    2023-03-02, 23:59:60 as the next minute and '2023-1-2' as '2023-01-02': a time counts only when it formats back
    to what was written, which is also the rule on the DuckDB path."""
    t = pc.strptime(raw, format=fmt, unit="s", error_is_null=True)
    same = pc.fill_null(pc.equal(pc.strftime(t, format=fmt), raw), False)
    return pc.if_else(same, t, pa.scalar(None, t.type))


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

    A record that is not an object, or holds what JSON has no place for (NaN, Infinity, a lone surrogate), is marked
    bad and read as `{}`, so that one stray value neither stops the file nor shifts the columns out of line with the
    record numbers; `original` keeps it as written, for quarantine.
    """
    records, strict = load_json_array(data, name)
    bad: dict[int, tuple[str, str]] = {}
    for i, r in enumerate(records):
        if type(r) is not dict:
            bad[i] = ("not_an_object", f"record is a JSON {type(r).__name__}, not an object")
        elif not strict:
            for k, v in r.items():
                problem = not_json(k) or not_json(v)
                if problem is None:
                    continue
                if isinstance(v, BadNumber) and k in fields:
                    bad[i] = ("wrong_type", f"field '{k}' should be {fields[k]}, got {v.what}")
                else:
                    bad[i] = ("wrong_type", f"field '{k}' holds {problem}")
                break
    original = records
    if bad:
        records = [{} if i in bad else r for i, r in enumerate(records)]
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

    written_as_int = exact_integers(data)
    cols = {f: _column(records, f, t, bad, written_as_int) for f, t in EXTENDED_FIELDS.items()}

    for req in REQUIRED:
        missing = pc.is_null(cols[req])
        if pc.any(missing).as_py():
            for i, m in enumerate(missing.to_pylist()):
                if m and i not in bad:
                    present = req in records[i]
                    bad[i] = ("wrong_type" if present else "missing_field",
                              f"field '{req}' is null" if present else f"field '{req}' is missing")

    ts_raw = cols["ts"]
    ended_at = parse_times(ts_raw, "%Y-%m-%dT%H:%M:%SZ")
    bad_ts = pc.and_(pc.is_null(ended_at), pc.is_valid(ts_raw))
    if pc.any(bad_ts).as_py():
        # Spotify writes exactly YYYY-MM-DDTHH:MM:SSZ; fractional seconds, offsets or impossible dates are not read.
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
