"""Fast path for extended streaming history: DuckDB's C++ JSON reader instead of Python dicts.

Well-formed files (the normal case) are parsed and validated here in one multi-threaded pass; validation rules
are the same as the Python path in `sources/export.py` and rows that break one get the same reason codes. A file
DuckDB cannot read with the expected types (a string where a number belongs, a record that is not an object, …)
returns None, and the exact record-by-record Python path takes over, so the fast path never loses precision.
"""

from __future__ import annotations

import itertools
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


def _validated_sql(view: str, now: str, video: bool, legacy: bool, present: bool = False) -> str:
    """`now`: a SQL timestamp (a literal or a parameter). `present`: every record is known to carry every key, so a
    null required field is a null value (as the exact path reports it), not a missing key."""
    ts = "try_strptime(ts, '%Y-%m-%dT%H:%M:%SZ')"
    ip = "coalesce(ip_addr_decrypted, ip_addr)" if legacy else "ip_addr"
    null = "wrong_type" if present else "missing_field"
    return f"""
    SELECT *,
        CASE
            WHEN ts IS NULL THEN '{null}'
            WHEN ms_played IS NULL THEN '{null}'
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
    FROM (SELECT *, {ts} AS _t FROM {view}) AS v
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
        _reason, ts AS _ts, ms_played AS _ms, _nk
    FROM {view} AS r
    """


def _first_record_keys(data: bytes) -> list[str] | None:
    """Keys of the first record in file order, found without copying the (possibly large) file."""
    start = data.find(b"{", 0, 4096)
    if start < 0 or data[:start].strip() != b"[":
        return None
    end = data.find(b"}", start)
    if end < 0:
        return None
    try:
        first = orjson.loads(data[start : end + 1])
    except orjson.JSONDecodeError:
        return None
    return list(first) if isinstance(first, dict) else None


def _file_keys(con: duckdb.DuckDBPyConnection, path: str) -> set[str]:
    """Every key used by any record, exactly — for files whose records do not all carry the first record's keys
    (a key count alone would miss a record that lacks one key and carries an unknown one instead; the uniform pass
    is exact only because its strict transform proves every record has all of them)."""
    return {k for (k,) in con.execute(
        f"SELECT DISTINCT unnest(json_keys(json)) "
        f"FROM read_json_objects('memory://{path}', format = 'array', maximum_object_size = 67108864)"
    ).fetchall()}


def _uniform_source(path: str, keys: list[str], fields: dict[str, str]) -> str:
    """Records read as JSON text, each transformed *strictly* to the first record's keys (a record lacking one of
    them is an error) and its key count kept: when every count equals the first record's, every record has exactly
    those keys. One pass settles both the typed values and the unknown-field question — ~30 % cheaper than a typed
    read followed by a scan of every record's keys, and as exact. Fields of the other layout become NULL columns."""
    struct = "{" + ", ".join(f'"{k}": "{_DUCK[fields[k]]}"' for k in keys) + "}"
    absent = "".join(f", NULL::{_DUCK[t]} AS {k}" for k, t in fields.items() if k not in keys)
    return (f"(SELECT r.*, _nk{absent} FROM ("
            f"SELECT json_transform_strict(json, '{struct}') AS r, len(json_keys(json)) AS _nk "
            f"FROM read_json_objects('memory://{path}', format = 'array', maximum_object_size = 67108864)))")


def _number_records(table: pa.Table) -> pa.Table:
    """Each row's record number (its position in the file's array), after `source` as the exact path has it. The
    parse keeps insertion order, so a row's position is its record's; numbering them in SQL took a window over every
    row — a blocking step that cost ~1 ms per file and ~0.7 µs per play (a tenth of the parse)."""
    at = table.column_names.index("source") + 1
    return table.add_column(at, "record_no", pa.array(np.arange(table.num_rows, dtype=np.int32)))


def _with_ids(rows_sql: str, user: str | None) -> str:
    """`user`: the user part of the playback ids as SQL (a literal or a parameter); None: no ids."""
    if user is None:
        return rows_sql
    from tunelake.sources.types import play_id_sql

    return f"SELECT *, {play_id_sql(user)} AS play_id FROM ({rows_sql})"


def _typed_source(path: str, fields: dict[str, str]) -> str:
    columns = "{" + ", ".join(f"'{k}': '{_DUCK[t]}'" for k, t in fields.items()) + "}"
    return (f"(SELECT *, NULL::BIGINT AS _nk FROM read_json("
            f"'memory://{path}', format = 'array', columns = {columns}, maximum_object_size = 67108864))")


def parse_extended_fast(data: bytes, name: str, fields: dict[str, str], *, now: datetime | None = None,
                        user_key: int | None = None):
    """Parse with DuckDB; None when the file needs the exact Python path (type errors, non-object records).

    With `user_key` the rows come with their playback ids, computed in the same pass (the merge would otherwise run
    one more query per listener for them).

    Spotify writes every key in every record, so the uniform pass (`_uniform_source`) settles nearly every file;
    a file whose records differ in their keys is read with the given types and its keys are scanned exactly."""
    from tunelake.sources.export import Parsed  # circular at import time

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
        if head and set(head) <= set(fields):
            keys = set(head)
            legacy = "ip_addr_decrypted" in keys or "username" in keys
            def uniform_sql(head: list[str] = head, legacy: bool = legacy) -> str:
                checked = _validated_sql(_uniform_source(path, head, fields), "CAST($1 AS TIMESTAMP)", video,
                                         legacy, True)
                return _with_ids(_rows_sql(f"({checked})"), None if user_key is None else "CAST($2 AS VARCHAR)")

            key = (tuple(head), tuple(fields.items()), video, user_key is not None)
            try:
                table = _execute_prepared(con, key, uniform_sql, [now_sql] + ([] if user_sql is None else [user_sql]))
            except (duckdb.Error, OSError, pa.ArrowException):  # a record lacks a key, a type is off, …
                table = None
            if table is not None and table.num_rows and (pc.min(table["_nk"]).as_py() != len(head)
                                                         or pc.max(table["_nk"]).as_py() != len(head)):
                table = None  # some record has other keys too: count them exactly below
        if table is None:
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
    table = _number_records(table.drop_columns(["_nk"]))
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
        messages = {
            "missing_field": "field '{f}' is missing or null",
            "wrong_type": "field '{f}' is null",
            "bad_timestamp": "field 'ts' is not an ISO-8601 UTC time: {ts!r}",
            "ts_out_of_range": "field 'ts' {ts} is before 2006 or in the future",
            "negative_ms_played": "field 'ms_played' is negative ({ms})",
            "bad_uri": "a spotify URI field is not a spotify:… URI",
        }
        for record_no, reason, ts, ms in bad:
            f = "ts" if ts is None else "ms_played"
            quarantine.append({"record_no": record_no, "reason": reason,
                               "message": messages[reason].format(f=f, ts=ts, ms=ms),
                               "record": records[record_no]})
    rows = rows.cast(rows.schema.set(0, pa.field("ended_at", pa.timestamp("ms"))))
    return Parsed(rows, n, quarantine, unknown, "endsong" if legacy else "extended")
