"""A tiny hand-made warehouse: tables created from the specs' DDL, rows typed in by hand, aggregates built by the
real aggregate models. Every expected value in the metric tests is worked out from the rows below."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tunelake.warehouse import rollups
from tunelake.warehouse.tables import TABLES

MODELS = Path(__file__).resolve().parents[3] / "src" / "tunelake" / "warehouse" / "models"

ALICE, BOB = 1, 2

# track: (artist, album, genre, duration_ms, popularity, release_year, energy or None)
TRACKS = {
    "t1": ("a1", "al1", "rock", 180_000, 80, 1995, 0.8),
    "t2": ("a1", "al1", "rock", 240_000, 60, 1995, None),
    "t3": ("a2", "al2", "jazz", 200_000, 40, 1972, 0.2),
    "t4": ("a3", "al3", "pop", 200_000, 20, 2001, None),
    "t5": ("a4", "al4", "rock", 240_000, None, None, None),
}

# (user, UTC end time, track, ms_played, skipped, session, platform); timezone UTC so local = UTC.
PLAYS = [
    (ALICE, "2024-01-01 10:00:00", "t1", 180_000, False, 1, "android"),
    (ALICE, "2024-01-01 10:03:00", "t2", 60_000, True, 1, "android"),
    (ALICE, "2024-01-01 12:00:00", "t3", 200_000, False, 2, "android"),
    (ALICE, "2024-01-02 09:00:00", "t1", 180_000, False, 3, "android"),
    (ALICE, "2024-01-03 09:00:00", "t1", 180_000, False, 4, "android"),
    (ALICE, "2024-01-05 09:00:00", "t4", 100_000, False, 5, "ios"),
    (ALICE, "2024-02-01 09:00:00", "t3", 200_000, False, 6, "ios"),
    (ALICE, "2024-02-01 09:04:00", "t5", 240_000, False, 6, "ios"),
    (BOB, "2024-01-01 12:00:00", "t3", 200_000, False, 1, "web"),
]


def create_tables(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> None:
    for t in TABLES.values():
        if names is None or t.name in names:
            cols = ", ".join(f"{c.name} {c.sql_type('duckdb')}" for c in t.columns)
            con.execute(f"CREATE TABLE {t.name} ({cols})")


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    df = pd.DataFrame(rows)  # noqa: F841 - read by DuckDB's replacement scan
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM df")


def build_tiny(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")
    create_tables(con, [t.name for t in TABLES.values() if t.layer != "analytics"])
    insert(con, "dim_user", [
        {"user_key": ALICE, "handle": "alice", "timezone": "UTC", "timezone_source": "configured", "plays": 8},
        {"user_key": BOB, "handle": "bob", "timezone": "UTC", "timezone_source": "configured", "plays": 1},
    ])
    insert(con, "dim_artist", [{"artist_id": a, "artist_name": f"Artist {a[1:]}", "is_surrogate": False}
                               for a in ("a1", "a2", "a3", "a4")])
    insert(con, "dim_album", [{"album_id": al, "album_name": f"Album {al[2:]}", "artist_id": v[0],
                               "release_year": v[5]} for al, v in {t[1]: t for t in TRACKS.values()}.items()])
    insert(con, "dim_track", [
        {"track_id": tid, "track_name": f"Track {tid[1:]}", "artist_id": a, "artist_name": f"Artist {a[1:]}",
         "album_id": al, "album_name": f"Album {al[2:]}", "primary_genre": g, "duration_ms": d, "popularity": p,
         "release_year": y, "energy": e, "has_audio_features": e is not None, "in_catalog": True}
        for tid, (a, al, g, d, p, y, e) in TRACKS.items()])
    con.execute("""INSERT INTO dim_date SELECT CAST(strftime(d, '%Y%m%d') AS INTEGER), d, year(d), quarter(d),
                          month(d), date_trunc('month', d), day(d), isodow(d), dayname(d), isodow(d) >= 6, week(d)
                   FROM (SELECT CAST(unnest(generate_series(DATE '2024-01-01', DATE '2024-02-29', INTERVAL 1 DAY))
                         AS DATE) AS d)""")
    rows = []
    for i, (user, end, tid, ms, skipped, session, platform) in enumerate(PLAYS):
        ended = datetime.fromisoformat(end)
        started = ended - timedelta(milliseconds=ms)
        a, al, _g, dur, *_ = TRACKS[tid]
        rows.append({
            "play_id": f"p{i}", "user_key": user, "track_id": tid, "artist_id": a, "album_id": al,
            "started_at": started, "ended_at": ended, "ended_at_local": ended,
            "date_key": started.year * 10000 + started.month * 100 + started.day, "local_hour": started.hour,
            "local_weekday": started.isoweekday(), "ms_played": ms, "reason_end": "fwdbtn" if skipped else "trackdone",
            "shuffle": False, "platform": platform, "source": "extended", "is_stream": ms >= 30_000,
            "is_skip": skipped, "completion": min(ms / dur, 1.0), "session_id": session, "media_type": "audio",
        })
    insert(con, "fact_play", rows)
    aggs = ["agg_user_day", "agg_user_day_hour", "agg_user_track_month"]  # built from fact_play, in this order
    aggs += sorted(t.name for t in TABLES.values() if t.kind == "agg" and t.name not in aggs)  # roll-ups of those
    for agg in aggs:
        con.execute(f"INSERT INTO {agg} BY NAME {(MODELS / f'{agg}.sql').read_text()}")


@pytest.fixture(scope="session", params=["star schema", "rollups"])
def tiny_con(request: pytest.FixtureRequest) -> duckdb.DuckDBPyConnection:
    """The tiny warehouse, once as the star schema alone and once with the rollups a build writes beside it: every
    metric test checks the same hand-worked values on both (questions about every listener read the rollups)."""
    con = duckdb.connect(":memory:")
    build_tiny(con)
    if request.param == "rollups":
        rollups.refresh(con)
        assert rollups.fresh(con)
    return con
