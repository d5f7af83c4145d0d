"""The playback id and the ms-since-epoch macro over every timestamp type the lake and the parse hand DuckDB.

The curated Parquet stores `ended_at` as timestamp[ms]; DuckDB 2.0.1 lost `epoch_ms(TIMESTAMP_MS)` ("Unimplemented
type for cast (INT64 -> INT64)") and broke every import in a fresh install, so both go through TIMESTAMP."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyarrow as pa
import pytest

from tunelake.curate.plays import PLAY_ID_SQL, cursor
from tunelake.warehouse.engines.duckdb import DUCKDB_MACROS

ENDED = dt.datetime(2024, 3, 5, 21, 7, 9, 123000, tzinfo=dt.UTC)
MS = 1709672829123  # ENDED in ms since the epoch, worked out by hand


def _rows(ts_type: pa.DataType) -> pa.Table:
    return pa.table({
        "user_key": pa.array([7, 7], pa.int64()),
        "ended_at": pa.array([ENDED, ENDED], ts_type),
        "track_id": pa.array(["4uLU6hMCjMI75M1A2tKUQC", None]),
        "episode_id": pa.array([None, None], pa.string()),
        "chapter_id": pa.array([None, None], pa.string()),
        "audiobook_id": pa.array([None, None], pa.string()),
        "track_name": pa.array(["Never Gonna Give You Up", "Song"]),
        "artist_name": pa.array(["Rick Astley", "Band"]),
        "episode_name": pa.array([None, None], pa.string()),
        "ms_played": pa.array([213573, 1500], pa.int64()),
    })


@pytest.mark.parametrize("ts_type", [pa.timestamp("ms"), pa.timestamp("us"), pa.timestamp("ms", tz="UTC"),
                                     pa.timestamp("us", tz="UTC")], ids=str)
def test_play_id_is_the_md5_of_user_end_item_and_ms_played(ts_type):
    con = cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("incoming", _rows(ts_type))
        ids = [r[0] for r in con.sql(f"SELECT {PLAY_ID_SQL} FROM incoming").fetchall()]
        millis = [r[0] for r in con.sql(f"SELECT {DUCKDB_MACROS['ts_ms']('ended_at')} FROM incoming").fetchall()]
    finally:
        con.close()
    want = [hashlib.md5(f"7|{MS}|4uLU6hMCjMI75M1A2tKUQC|213573".encode()).hexdigest(),
            hashlib.md5(f"7|{MS}|n:Song/Band/|1500".encode()).hexdigest()]
    assert ids == want
    assert millis == [MS, MS]
