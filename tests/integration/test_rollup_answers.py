"""Questions about every listener are answered from the rollups a build writes (`warehouse/rollups.py`); each answer
must equal the same metric computed straight from fact_play, for every kind of date range the dashboard can ask:
all time, a year, a year the data ends in, a month, a quarter, ragged windows, ranges starting or ending outside the
data, a range with no data."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from tunelake.analytics import insights as I
from tunelake.curate.ingest import import_paths
from tunelake.pipeline import build
from tunelake.synthetic.world import generate_world
from tunelake.warehouse import rollups
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import open_workspace


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    world = tmp_path_factory.mktemp("rollup-world")
    # 640 days ending 2026-06-30: from October 2024, so a whole 2025 and parts of 2024 and 2026
    generate_world(world, users=8, days=640, seed=31, account_data=False)
    ws = open_workspace(tmp_path_factory.mktemp("rollup-ws"))
    for h in sorted(p.name for p in (world / "exports").iterdir()):
        import_paths(ws, [str(world / "exports" / h)], h)
    build(ws)
    c = open_warehouse(ws)
    yield c
    c.close()


def _dkey(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _ranges(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[date | None, date | None]]:
    lo, hi = con.execute("SELECT min(date), max(date) FROM agg_user_day").fetchone()
    assert lo.year < 2025 < hi.year  # the world spans a whole year and parts of two others
    last90 = I.last_days(con, 90)
    return {
        "all time": (None, None), "2025": I.period_range("2025"), "2026 (data ends in June)": I.period_range("2026"),
        "first year (data starts in it)": I.period_range(str(lo.year)), "2025-03": I.period_range("2025-03"),
        "2025-Q2": I.period_range("2025-Q2"), "last 90 days": (last90.start, last90.end),
        "mid-month to mid-month across a year": (date(2024, 11, 17), date(2026, 2, 3)),
        "inside one month": (date(2025, 7, 4), date(2025, 7, 19)), "one day": (hi, hi),
        "from before the data to mid 2025": (date(2000, 1, 1), date(2025, 8, 15)),
        "from mid 2025 to after the data": (date(2025, 8, 16), date(2030, 1, 1)),
        "start only": (date(2025, 5, 10), None), "end only": (None, date(2025, 5, 9)),
        "covering the data exactly": (lo, hi), "no data": (hi + timedelta(days=3), hi + timedelta(days=40)),
    }


def _fact_where(start: date | None, end: date | None) -> str:
    conds = [f"date_key >= {_dkey(start)}" if start else "TRUE", f"date_key <= {_dkey(end)}" if end else "TRUE"]
    return " AND ".join(conds)


def _kpis_from_fact_play(con: duckdb.DuckDBPyConnection, where: str) -> dict:
    row = con.execute(f"""
        SELECT count(DISTINCT user_key), count(*), count(*) FILTER (WHERE is_stream), count(*) FILTER (WHERE is_skip),
               coalesce(sum(ms_played), 0) / 3600000.0, count(DISTINCT track_id), count(DISTINCT artist_id),
               min(date_key), max(date_key), avg(completion)
        FROM fact_play WHERE {where}""").fetchone()
    keys = ("listeners", "plays", "streams", "skips", "hours", "distinct_tracks", "distinct_artists", "first",
            "last", "mean_completion")
    return dict(zip(keys, row, strict=True))


def _top_from_fact_play(con: duckdb.DuckDBPyConnection, key: str, where: str, n: int) -> pd.DataFrame:
    return con.execute(f"""
        WITH t AS (SELECT {key} AS k, count(*) AS plays, count(*) FILTER (WHERE is_stream) AS streams,
                          sum(ms_played) AS ms, count(DISTINCT user_key) AS listeners
                   FROM fact_play WHERE {where} AND {key} IS NOT NULL GROUP BY 1)
        SELECT k AS {key}, plays, streams, ms / 3600000.0 AS hours, listeners FROM t
        ORDER BY ms DESC NULLS LAST, plays DESC, k LIMIT {n}""").df()


def test_the_build_wrote_fresh_rollups_and_each_kind_of_range_reads_them(con: duckdb.DuckDBPyConnection) -> None:
    assert rollups.fresh(con)
    assert I._wide(con, I.ALL)
    assert rollups.cover(con, *I.period_range("2025")) == rollups.Cover((("year", date(2025, 1, 1)),), ())
    assert rollups.cover(con, *I.period_range("2026")).single == ("year", date(2026, 1, 1))
    q2 = rollups.cover(con, *I.period_range("2025-Q2"))
    assert q2.periods == tuple(("month", date(2025, m, 1)) for m in (4, 5, 6)) and not q2.days
    ragged = rollups.cover(con, date(2024, 11, 17), date(2026, 2, 3))
    assert ragged.periods == (("month", date(2024, 12, 1)), ("year", date(2025, 1, 1)), ("month", date(2026, 1, 1)))
    assert ragged.days == ((20241117, 20241130), (20260201, 20260203))
    # a listener's viewer or filter never reads the rollups (they hold everyone's totals)
    assert not I._wide(con, I.Filters(user_keys=(1,)))
    assert not I._wide(con, I.Filters(viewer=I.listener_viewer(1)))


def test_kpis_for_every_listener_equal_fact_play(con: duckdb.DuckDBPyConnection) -> None:
    checked = 0
    for name, (start, end) in _ranges(con).items():
        got = I.kpis(con, I.Filters(start=start, end=end))
        want = _kpis_from_fact_play(con, _fact_where(start, end))
        for key in ("listeners", "plays", "streams", "skips", "distinct_tracks", "distinct_artists"):
            assert got[key] == want[key], (name, key)
        assert got["hours"] == pytest.approx(want["hours"], rel=1e-12), name
        assert (got["first_date"] and _dkey(got["first_date"])) == want["first"], name
        assert (got["last_date"] and _dkey(got["last_date"])) == want["last"], name
        if want["mean_completion"] is None:
            assert got["mean_completion"] is None, name
        else:  # a float sum: its last bits depend on the order it is added in
            assert got["mean_completion"] == pytest.approx(want["mean_completion"], rel=1e-12), name
        assert got["skip_rate"] == (want["skips"] / want["plays"] if want["plays"] else None), name
        checked += want["plays"] > 0
    assert checked >= 14  # every range but "no data" has plays


@pytest.mark.parametrize("which", ["tracks", "artists"])
def test_top_lists_for_every_listener_equal_fact_play(con: duckdb.DuckDBPyConnection, which: str) -> None:
    key = "track_id" if which == "tracks" else "artist_id"
    top = I.top_tracks if which == "tracks" else I.top_artists
    for name, (start, end) in _ranges(con).items():
        got = top(con, I.Filters(start=start, end=end), 15)
        want = _top_from_fact_play(con, key, _fact_where(start, end), 15)
        assert list(got["rank"]) == list(range(1, len(want) + 1)), name
        pd.testing.assert_frame_equal(got[[key, "plays", "streams", "hours", "listeners"]].reset_index(drop=True),
                                      want, check_dtype=False, rtol=1e-12, obj=name)
        if len(want):
            assert got[key].nunique() == len(got), name


def test_an_update_subtracts_a_listeners_old_day_counts(con: duckdb.DuckDBPyConnection) -> None:
    """The day rollups are updated by counts, not reread: a replaced listener's plays that vanish or move to other
    days must leave them exactly as a rebuild from fact_play would make them (no key with 0 plays left behind)."""
    file = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    mem = duckdb.connect()
    try:
        mem.execute(f"ATTACH '{file}' AS src (READ_ONLY)")
        for t in ("fact_play", "agg_user_track_month", "agg_user_artist_month"):
            mem.execute(f"CREATE TABLE {t} AS SELECT * FROM src.{t}")
        rollups.refresh(mem)
        user, days = mem.execute("SELECT user_key, count(DISTINCT date_key) FROM fact_play GROUP BY 1 "
                                 "ORDER BY count(*) DESC LIMIT 1").fetchone()
        assert days > 30
        mem.execute(f"CREATE TEMP TABLE _u AS SELECT {user} AS user_key")
        rollups.snapshot(mem, '"memory".main', "_u")
        before = mem.execute("SELECT count(*) FROM rollup.day_tracks").fetchone()[0]
        # a third of the listener's plays gone, a third moved to the first day of the data, a new track played
        mem.execute(f"DELETE FROM fact_play WHERE user_key = {user} AND hash(started_at) % 3 = 0")
        mem.execute(f"UPDATE fact_play SET date_key = (SELECT min(date_key) FROM fact_play) "
                    f"WHERE user_key = {user} AND hash(started_at) % 3 = 1")
        mem.execute(f"INSERT INTO fact_play BY NAME SELECT * REPLACE ('new-track' AS track_id) FROM fact_play "
                    f"WHERE user_key = {user} LIMIT 1")
        rollups.update(mem, '"memory".main', "_u")
        for table, key in (("day_tracks", "track_id"), ("day_artists", "artist_id")):
            want = f"SELECT date_key, {key}, count(*) AS plays FROM fact_play GROUP BY ALL"
            for a, b in ((f"rollup.{table}", f"({want})"), (f"({want})", f"rollup.{table}")):
                assert mem.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})"
                                   ).fetchone()[0] == 0, table
            assert mem.execute(f"SELECT count(*) FROM rollup.{table} WHERE plays <= 0").fetchone()[0] == 0
        after = mem.execute("SELECT count(*) FROM rollup.day_tracks").fetchone()[0]
        assert after < before  # the deleted and moved plays took (day, track) keys with them
        assert mem.execute("SELECT plays FROM rollup.day_tracks WHERE track_id = 'new-track'").fetchall() == [(1,)]
    finally:
        mem.close()
