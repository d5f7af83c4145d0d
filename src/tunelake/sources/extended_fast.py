"""Fast path for extended streaming history: DuckDB's C++ JSON reader instead of Python dicts.

Well-formed files (the normal case) are parsed and validated here in one multi-threaded pass; validation rules
are the same as the Python path in `sources/export.py` and rows that break one get the same reason codes and
messages. DuckDB converts between JSON types wherever it can ("300000" → 300000, 29999.6 → 30000, true → 1,
1 → true, 5 → "5"), so the same pass also checks every value's JSON type (`_checked`); a file holding any value of
the wrong type, or anything else DuckDB reads more leniently than the exact path (NaN, a record that is not an
object, …), returns None and the exact record-by-record Python path decides, so both paths quarantine the same
records with the same reasons.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from tunelake.duck import execute_arrow, import_connection
from tunelake.sources.types import Parsed, play_id_sql

_DUCK = {"str": "VARCHAR", "int": "BIGINT", "bool": "BOOLEAN"}
_local = threading.local()
_names = itertools.count()
# The one path a connection's prepared parse statements read: each history file is put there in turn.
_CURRENT = "/current.json"
_PREPARED_MAX = 32  # distinct layouts (first record's keys × audio/video × ids) a connection keeps statements for


class _SharedBytes(MemoryFile):
    """An in-memory file over the caller's bytes that knows its size: fsspec's MemoryFile asks `getbuffer()`,
    which copies bytes a BytesIO still shares with its source (~4 MB, 0.65 ms per history file)."""

    def __init__(self, fs: MemoryFileSystem, path: str, data: bytes):
        super().__init__(fs, path, data)
        self._size = len(data)

    @property
    def size(self) -> int:
        return self._size


class _BytesFS(MemoryFileSystem):
    """The memory filesystem DuckDB reads the history files from, without copying them."""

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        _SharedBytes(self, self._strip_protocol(path), value).commit()


def _connection() -> tuple[duckdb.DuckDBPyConnection, MemoryFileSystem]:
    """One DuckDB connection per thread (connecting costs ~15 ms) with an in-memory filesystem for the bytes."""
    con = getattr(_local, "con", None)
    if con is None:
        con = import_connection(duckdb.connect())
        con.execute("SET TimeZone = 'UTC'")
        # Prepared statements read changing bytes under one path: nothing may be cached by path (DuckDB does not
        # cache Python filesystems today; this says so for good).
        con.execute("SET enable_external_file_cache = false")
        # Rows come out in file order (record numbers are positions: see `_number_records`).
        con.execute("SET preserve_insertion_order = true")
        mem = _BytesFS(skip_instance_cache=True, global_store=False)
        con.register_filesystem(mem)
        _local.con, _local.mem, _local.prepared = con, mem, {}
    return _local.con, _local.mem


def _execute_prepared(con: duckdb.DuckDBPyConnection, key: tuple, sql: Callable[[], str],
                      params: list[str]) -> pa.Table:
    """Run a parse statement prepared once per layout. Planning and starting the parse query cost ~7 ms per file,
    more than parsing a small file; a prepared statement saves a third of that (the `now` and user parameters are
    all that differ between the files of a layout; `params` are their SQL literals). The file must already be at
    `_CURRENT`."""
    prepared: dict[tuple, str] = _local.prepared
    name = prepared.get(key)
    if name is None:
        if len(prepared) >= _PREPARED_MAX:
            for old in prepared.values():
                con.execute(f"DEALLOCATE {old}")
            prepared.clear()
        name = f"parse_{next(_names)}"
        con.execute(f"PREPARE {name} AS {sql()}")
        prepared[key] = name
    return con.execute(f"EXECUTE {name}({', '.join(params)})").to_arrow_table()  # EXECUTE takes no `?` parameters


def _validated_sql(view: str, now: str, video: bool, legacy: bool) -> str:
    """`now`: a SQL timestamp (a literal or a parameter). The view comes from `_uniform_source` or `_typed_source`:
    it gives `_t` (the parsed ts, null unless it is exactly YYYY-MM-DDTHH:MM:SSZ) and `_ts_here`/`_ms_here` (the key
    is there, so a null is a null value — `wrong_type`, as the exact path reports it — not a missing key)."""
    ip = "coalesce(ip_addr_decrypted, ip_addr)" if legacy else "ip_addr"
    return f"""
    SELECT *,
        CASE
            WHEN ts IS NULL THEN CASE WHEN _ts_here THEN 'wrong_type' ELSE 'missing_field' END
            WHEN ms_played IS NULL THEN CASE WHEN _ms_here THEN 'wrong_type' ELSE 'missing_field' END
            WHEN _t IS NULL THEN 'bad_timestamp'
            WHEN _t < TIMESTAMP '2006-01-01' OR _t > {now} THEN 'ts_out_of_range'
            WHEN ms_played < 0 THEN 'negative_ms_played'
            WHEN spotify_track_uri IS NOT NULL AND NOT starts_with(spotify_track_uri, 'spotify:track:') THEN 'bad_uri'
            WHEN spotify_episode_uri IS NOT NULL AND NOT starts_with(spotify_episode_uri, 'spotify:episode:')
                THEN 'bad_uri'
            WHEN audiobook_chapter_uri IS NOT NULL AND NOT starts_with(audiobook_chapter_uri, 'spotify:') THEN 'bad_uri'
            WHEN audiobook_uri IS NOT NULL AND NOT starts_with(audiobook_uri, 'spotify:') THEN 'bad_uri'
        END AS _reason,
        CAST(_t AS TIMESTAMP_MS) AS _ended_at,
        nullif(substr(spotify_track_uri, 15), '') AS _track_id,
        nullif(substr(spotify_episode_uri, 17), '') AS _episode_id,
        nullif(substr(audiobook_chapter_uri, 9), '') AS _chapter_id,
        nullif(substr(audiobook_uri, 9), '') AS _audiobook_id,
        {ip} AS _ip,
        '{"video" if video else "audio"}' AS _media
    FROM {view} AS v
    """


def _rows_sql(view: str) -> str:
    return f"""
    SELECT
        _ended_at AS ended_at,
        's' AS ts_precision,
        ms_played,
        CASE WHEN _track_id IS NOT NULL THEN 'track'
             WHEN _episode_id IS NOT NULL THEN 'episode'
             WHEN _chapter_id IS NOT NULL OR _audiobook_id IS NOT NULL THEN 'audiobook'
             ELSE 'unknown' END AS content_type,
        _media AS media_type,
        _track_id AS track_id,
        master_metadata_track_name AS track_name,
        master_metadata_album_artist_name AS artist_name,
        master_metadata_album_album_name AS album_name,
        _episode_id AS episode_id,
        episode_name,
        episode_show_name AS show_name,
        _audiobook_id AS audiobook_id,
        audiobook_title,
        _chapter_id AS chapter_id,
        audiobook_chapter_title AS chapter_title,
        reason_start, reason_end, shuffle, skipped, offline,
        CASE WHEN offline_timestamp IS NULL OR offline_timestamp <= 0 THEN NULL
             WHEN offline_timestamp > 100000000000 THEN make_timestamp(offline_timestamp * 1000)
             ELSE make_timestamp(offline_timestamp * 1000000) END::TIMESTAMP_MS AS offline_at,
        incognito_mode AS incognito,
        platform, conn_country,
        _ip AS ip_addr,
        user_agent_decrypted AS user_agent,
        username,
        'extended' AS source,
        _reason, ts AS _ts, ms_played AS _ms, _nk, _tok
    FROM {view} AS r
    """


def _first_record_keys(data: bytes) -> list[str] | None:
    """Keys of the first record in file order, found without copying the (possibly large) file."""
    start = data.find(b"{", 0, 4096)
    if start < 0 or data[:start].strip() != b"[":
        return None
    end = start
    for _ in range(64):  # a '}' inside a string or a nested object is not the record's end: try the next one
        end = data.find(b"}", end + 1, start + (1 << 20))
        if end < 0:
            return None
        try:
            first = orjson.loads(data[start : end + 1])
        except orjson.JSONDecodeError:
            continue
        return list(first) if isinstance(first, dict) else None
    return None


def _file_keys(con: duckdb.DuckDBPyConnection, path: str) -> set[str]:
    """Every key used by any record, exactly — for files whose records do not all carry the first record's keys
    (a key count alone would miss a record that lacks one key and carries an unknown one instead; the uniform pass
    is exact only because its strict transform proves every record has all of them)."""
    return {k for (k,) in con.execute(
        f"SELECT DISTINCT unnest(json_keys(json)) "
        f"FROM read_json_objects('memory://{path}', format = 'array', maximum_object_size = 67108864)"
    ).fetchall()}


_OBJECTS = "read_json_objects('memory://{path}', format = 'array', maximum_object_size = 67108864)"
_TS_FORMAT = "'%Y-%m-%dT%H:%M:%SZ'"
_NOT_STRINGS = "['BOOLEAN', 'BIGINT', 'UBIGINT', 'DOUBLE', 'ARRAY', 'OBJECT']"
_QUOTED = {"username"}  # strings that are often all digits (older accounts): read as JSON text, checked by the quote
_ADDRESSES = {"ip_addr", "ip_addr_decrypted"}  # strings that start with a digit: checked by parsing as a number


def _checked(fields: dict[str, str], keys: list[str]) -> tuple[str, str, str, str]:
    """SQL that reads `keys` from `r` (a record transformed to the struct returned first) without converting any
    value, and proves that each has the JSON type `fields` gives it. → (struct, values, `_iok`, `_sus`).

    Numbers and booleans are taken as their JSON text and read from it: an int must read back as exactly its text
    (so 1.5, 1e3, "5", true or an integer beyond 64 bits fail `_iok`), a bool must be `true` or `false` (`skipped`
    may be 0 or 1, as on the exact path). Strings are read as VARCHAR, which DuckDB also makes of a number, a bool,
    a list or an object (their JSON text). Such text starts with a digit, '-', '[' or '{', or is true, false, nan or
    inf(inity) in some case; a row holding a string like that (`_sus`, rare: a track called "1999") has its JSON
    types looked up. The tests are chosen for cost (measured in instructions): least() and greatest() over all
    strings catch digits, '-' and '{' at once; lower() runs only on strings of the lengths of those words."""
    struct, values, iok, plain, sus = [], [], [], [], []
    for k in keys:
        typ = fields[k]
        as_json = typ != "str" or k in _QUOTED
        struct.append(f'"{k}": "{"JSON" if as_json else "VARCHAR"}"')
        raw = f"r.{k}::VARCHAR"
        if typ == "int":
            values.append(f"TRY_CAST({raw} AS BIGINT) AS {k}")
            iok.append(f"(r.{k} IS NULL OR coalesce(TRY_CAST({raw} AS BIGINT)::VARCHAR = {raw}, false))")
        elif typ == "bool":
            one, allowed = (("'true', '1'", "'true', 'false', '0', '1'") if k == "skipped"
                            else ("'true'", "'true', 'false'"))
            values.append(f"({raw} IN ({one})) AS {k}")
            iok.append(f"(r.{k} IS NULL OR {raw} IN ({allowed}))")
        elif as_json:  # a JSON string: its text is quoted; without escapes, the value is the text inside the quotes
            values.append(f"CASE WHEN contains({raw}, '\\') THEN json_extract_string(r.{k}, '$') "
                          f"ELSE ({raw})[2:-2] END AS {k}")
            iok.append(f"(r.{k} IS NULL OR starts_with({raw}, '\"'))")
        else:
            v = f"r.{k}"
            values.append(f"{v} AS {k}")
            if k == "ts":
                continue  # a ts that is not a time has its type looked up anyway (see `_t` in the sources)
            if k in _ADDRESSES:
                sus.append(f"TRY_CAST({v} AS DOUBLE) IS NOT NULL")
            else:
                plain.append(v)
            sus.append(f"CASE WHEN strlen({v}) IN (3, 4, 5, 8) "
                       f"THEN lower({v}) IN ('true', 'false', 'nan', 'inf', 'infinity') ELSE false END")
            sus.append(f"starts_with({v}, '[')")
    if plain:
        sus.append(f"least({', '.join(plain)}) < ':'")  # a digit, '-' or '+' first (and some punctuation)
    texts = plain + [f"r.{k}" for k in keys if k in _ADDRESSES]
    if texts:
        sus.append(f"greatest({', '.join(texts)}) >= '{{'")  # '{' first (and anything past ASCII letters)
    return ("{" + ", ".join(struct) + "}", ", ".join(values), " AND ".join(iok) or "true",
            " OR ".join(f"({x})" for x in sus) or "false")


def _canonical_ts(t0: str) -> str:
    """`t0` (try_strptime of ts) when ts is exactly YYYY-MM-DDTHH:MM:SSZ. DuckDB also reads '2023-1-2T3:4:5Z',
    leading and trailing white space and five-digit years; a 20-character ts with a digit first, 'Z' last and a
    year below 10000 can only be the canonical form (cheaper than formatting the time back: 2k instructions a
    row). The exact path applies the same rule (`export.parse_times`)."""
    return (f"CASE WHEN strlen(r.ts) = 20 AND r.ts >= '0' AND ends_with(r.ts, 'Z') "
            f"AND {t0} < TIMESTAMP '10000-01-01' THEN {t0} END")


def _string_paths(fields: dict[str, str], keys: list[str]) -> str:
    return "[" + ", ".join(f"'$.{k}'" for k in keys if fields[k] == "str") + "]"


def _absent(fields: dict[str, str], keys: list[str]) -> str:
    return "".join(f", NULL::{_DUCK[t]} AS {k}" for k, t in fields.items() if k not in keys)


def _uniform_source(path: str, keys: list[str], fields: dict[str, str]) -> str:
    """Records read as JSON text, each transformed *strictly* to the first record's keys (a record lacking one of
    them is an error) and its key count kept: when every count equals the first record's, every record has exactly
    those keys. One pass settles the values, their JSON types (`_checked` → `_tok`) and the unknown-field question
    — ~30 % cheaper than a typed read followed by a scan of every record's keys, and as exact. Fields of the other
    layout become NULL columns."""
    struct, values, iok, sus = _checked(fields, keys)
    return f"""(SELECT {values}, _nk, _t, true AS _ts_here, true AS _ms_here,
            coalesce(_iok AND coalesce(NOT list_has_any(_jt, {_NOT_STRINGS}), true), false) AS _tok
            {_absent(fields, keys)}
        FROM (SELECT *, CASE WHEN _sus OR (_t IS NULL AND r.ts IS NOT NULL)
                             THEN json_type(json, {_string_paths(fields, keys)}) END AS _jt
              FROM (SELECT json, r, _nk, {iok} AS _iok, {sus} AS _sus, {_canonical_ts("_t0")} AS _t
                    FROM (SELECT json, r, _nk, try_strptime(r.ts, {_TS_FORMAT}) AS _t0
                          FROM (SELECT json, json_transform_strict(json, '{struct}') AS r,
                                       len(json_keys(json)) AS _nk
                                FROM {_OBJECTS.format(path=path)})))))"""


def _typed_source(path: str, fields: dict[str, str]) -> str:
    """Every field, read with the same checks as the uniform pass, from records whose keys differ: a missing key
    reads as null, and every record's JSON types are looked up (this path is rare: Spotify writes every key)."""
    keys = list(fields)
    struct, values, iok, _ = _checked(fields, keys)
    ts_at = [k for k in keys if fields[k] == "str"].index("ts") + 1
    return f"""(SELECT {values}, NULL::BIGINT AS _nk, _t, _jt[{ts_at}] IS NOT NULL AS _ts_here,
            json_exists(json, '$.ms_played') AS _ms_here,
            coalesce(_obj AND _iok AND NOT list_has_any(_jt, {_NOT_STRINGS}), false) AS _tok
        FROM (SELECT json, r, _obj, {iok} AS _iok, json_type(json, {_string_paths(fields, keys)}) AS _jt,
                     {_canonical_ts("_t0")} AS _t
              FROM (SELECT json, r, json_type(json) = 'OBJECT' AS _obj, try_strptime(r.ts, {_TS_FORMAT}) AS _t0
                    FROM (SELECT json, json_transform(json, '{struct}') AS r FROM {_OBJECTS.format(path=path)}))))"""


# DuckDB reads NaN, Infinity and inf in any case as numbers; the exact path quarantines or refuses them. The uniform
# pass type-checks every value, but a file with unknown keys may hide one there.
_LITERALS = re.compile(rb"(?i)nan|inf")


def _number_records(table: pa.Table) -> pa.Table:
    """Each row's record number (its position in the file's array), after `source` as the exact path has it. The
    parse keeps insertion order, so a row's position is its record's; numbering them in SQL took a window over every
    row — a blocking step that cost ~1 ms per file and ~0.7 µs per play (a tenth of the parse)."""
    at = table.column_names.index("source") + 1
    n = table.num_rows  # from the buffer: pa.array() would import pandas (~0.16 s, holding the GIL) on this thread
    numbers = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(np.arange(n, dtype=np.int32))])
    return table.add_column(at, "record_no", numbers)


def _with_ids(rows_sql: str, user: str | None) -> str:
    """`user`: the user part of the playback ids as SQL (a literal or a parameter); None: no ids."""
    if user is None:
        return rows_sql

    return f"SELECT *, {play_id_sql(user)} AS play_id FROM ({rows_sql})"


def parse_extended_fast(data: bytes, name: str, fields: dict[str, str], *, now: datetime | None = None,
                        user_key: int | None = None):
    """Parse with DuckDB; None when the file needs the exact Python path (a value of the wrong type, a record that
    is not an object, NaN, …: anything where DuckDB would read more than the exact path does).

    With `user_key` the rows come with their playback ids, computed in the same pass (the merge would otherwise run
    one more query per listener for them).

    Spotify writes every key in every record, so the uniform pass (`_uniform_source`) settles nearly every file;
    a file whose records differ in their keys is read field by field and its keys are scanned exactly."""

    if not data[:4096].lstrip().startswith(b"["):  # also refuses a BOM: the exact path strips it
        return None
    con, mem = _connection()
    path = _CURRENT
    mem.pipe_file(path, data)  # the file shares the bytes (no copy into a growing buffer)
    now = (now or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    video = "Streaming_History_Video" in name
    now_sql = f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'"
    user_sql = None if user_key is None else f"'{int(user_key)}'"
    try:
        # Older exports name the IP field ip_addr_decrypted; the first record tells which layout this is.
        head = _first_record_keys(data)
        table = None
        if head and set(head) <= set(fields) and {"ts", "ms_played"} <= set(head):
            keys = set(head)
            legacy = "ip_addr_decrypted" in keys or "username" in keys
            def uniform_sql(head: list[str] = head, legacy: bool = legacy) -> str:
                source = _uniform_source(path, head, fields)
                checked = _validated_sql(source, "CAST($1 AS TIMESTAMP)", video, legacy)
                return _with_ids(_rows_sql(f"({checked})"), None if user_key is None else "CAST($2 AS VARCHAR)")

            key = (tuple(head), tuple(fields.items()), video, user_key is not None)
            try:
                table = _execute_prepared(con, key, uniform_sql, [now_sql] + ([] if user_sql is None else [user_sql]))
            except (duckdb.Error, OSError, pa.ArrowException):  # a record lacks a key, is not an object, …
                table = None
            if table is not None and table.num_rows and (pc.min(table["_nk"]).as_py() != len(head)
                                                         or pc.max(table["_nk"]).as_py() != len(head)):
                table = None  # some record has other keys too: count them exactly below
        if table is None:
            if _LITERALS.search(data):
                return None  # maybe a NaN under a key no field reads (or just "Infinity" in a name: rare either way)
            legacy = head is None or "ip_addr_decrypted" in head or "username" in head
            checked = _validated_sql(_typed_source(path, fields), now_sql, video, legacy)
            try:
                table = execute_arrow(con, _with_ids(_rows_sql(f"({checked})"), user_sql))
            except (duckdb.Error, OSError, pa.ArrowException):  # errors met while streaming arrive as Arrow/OS errors
                return None
            keys = _file_keys(con, path)
            if legacy != ("ip_addr_decrypted" in keys or "username" in keys):
                return None  # mixed layouts in one file: let the exact path sort it out
    except duckdb.Error:
        return None
    finally:
        mem.pipe_file(path, b"[]")  # let go of the file's bytes; the path stays for the prepared statements
    if not pc.all(table["_tok"]).as_py():
        return None  # a value of the wrong JSON type: the exact path names it, record by record
    table = _number_records(table.drop_columns(["_nk", "_tok"]))
    unknown = keys - set(fields)
    n = table.num_rows
    reasons = table["_reason"]
    if reasons.null_count == n:
        rows, bad = table.drop_columns(["_reason", "_ts", "_ms"]), []
    else:
        ok = pc.is_null(reasons)
        rows = table.filter(ok).drop_columns(["_reason", "_ts", "_ms"])
        failed = table.filter(pc.invert(ok))
        bad = list(zip(failed["record_no"].to_pylist(), failed["_reason"].to_pylist(), failed["_ts"].to_pylist(),
                       failed["_ms"].to_pylist(), strict=True))
    quarantine = []
    if bad:
        records = orjson.loads(data)
        for record_no, reason, ts, ms in bad:
            quarantine.append({"record_no": record_no, "reason": reason,
                               "message": _message(reason, records[record_no], ts, ms),
                               "record": records[record_no]})
    rows = rows.cast(rows.schema.set(0, pa.field("ended_at", pa.timestamp("ms"))))
    return Parsed(rows, n, quarantine, unknown, "endsong" if legacy else "extended")


_URIS = (("spotify_track_uri", "spotify:track:"), ("spotify_episode_uri", "spotify:episode:"),
         ("audiobook_chapter_uri", "spotify:"), ("audiobook_uri", "spotify:"))


def _message(reason: str, record: dict, ts: str | None, ms: int | None) -> str:
    """The exact path's message for a record the SQL gave `reason` (fields checked in the exact path's order)."""
    if reason in ("missing_field", "wrong_type"):
        f = "ts" if ts is None else "ms_played"
        return f"field '{f}' is {'null' if f in record else 'missing'}"
    if reason == "bad_timestamp":
        return f"field 'ts' is not an ISO-8601 UTC time: {ts!r}"
    if reason == "ts_out_of_range":
        return f"field 'ts' {ts} is before 2006 or in the future"
    if reason == "negative_ms_played":
        return f"field 'ms_played' is negative ({ms})"
    f, prefix = next((f, p) for f, p in _URIS if record.get(f) is not None and not record[f].startswith(p))
    return f"field '{f}' is not a {prefix}… URI"
