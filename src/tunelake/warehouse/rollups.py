"""Whole-warehouse rollups: per-track and per-artist totals of every month, year and all time, with their exact
listener counts, kept in the serving file beside the star schema (schema `rollup`) for the metric layer.

Why they exist: the per-listener aggregates are almost as long as fact_play when many listeners play a large
catalogue (at 10.3M plays agg_user_track_month has 5.4M rows), so an unfiltered dashboard question (all-time KPIs,
the top tracks of a year) scanned millions of rows and counted distinct VARCHAR ids: 300–460 ms at 10.3M plays,
seconds at 100M. A rollup row per (period, track) answers those with one small range of a sorted table; distinct
counts over several periods are a DISTINCT over their rows. The ragged days at the ends of a range come from
`day_tracks` / `day_artists`, the plays per (day, key) stored in day order: fact_play is stored in listener order, so
a filter on its days skips nothing (the last 90 days at 103M plays took 480 ms from fact_play). Their play counts
make them additive, so an incremental build adds and subtracts the replaced listeners' counts instead of rereading
the days. They are not part of the table contract (Synapse, Power BI and exports have the star schema, and
compute the same from it): they are an index of the DuckDB serving file, rebuilt in full by every build from the
tables of that file, so they can never describe other data than the file's own. `fresh` checks that they still
count what the file holds before a reader uses them; a file without them is answered from the star schema.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb

SCHEMA = "rollup"
TABLES = ("tracks", "artists", "days", "day_tracks", "day_artists")
VERSION = "2"  # part of the incremental build's code hash: a change here makes the next build full
ALL_TIME = date(1, 1, 1)  # period_start of the one 'all' period
# rollup table → the per-listener monthly aggregate it sums, and its key
_SOURCES = {"tracks": ("agg_user_track_month", "track_id"), "artists": ("agg_user_artist_month", "artist_id")}
_COLS = "user_key, month_start, {key}, plays, streams, skips, ms_played"
# day rollup → fact_play's key it counts plays of, per date_key
_DAY_KEYS = {"day_tracks": "track_id", "day_artists": "artist_id"}


def _day_counts(rows: str, key: str) -> str:
    return f"SELECT date_key, {key}, count(*) AS plays FROM {rows} GROUP BY ALL"


def _periods(source: str, key: str) -> str:
    """Per-(period, key) totals of a per-user monthly aggregate at each grain; listeners are exact per period."""
    parts = []
    # A month's rows are one per listener already (the source's key is user, month, key): count(*) is exact there
    # and 3× cheaper than a DISTINCT.
    for grain, start, listeners in (
            ("month", "month_start", "count(*)"),
            ("year", "CAST(date_trunc('year', month_start) AS DATE)", "count(DISTINCT user_key)"),
            ("all", f"DATE '{ALL_TIME.isoformat()}'", "count(DISTINCT user_key)")):
        parts.append(f"""SELECT '{grain}' AS grain, {start} AS period_start, {key},
                                CAST(sum(plays) AS BIGINT) AS plays, CAST(sum(streams) AS BIGINT) AS streams,
                                CAST(sum(skips) AS BIGINT) AS skips, CAST(sum(ms_played) AS BIGINT) AS ms_played,
                                CAST({listeners} AS BIGINT) AS listeners
                         FROM {source} GROUP BY ALL""")
    return " UNION ALL ".join(parts)


def _finish(con: duckdb.DuckDBPyConnection, main: str) -> dict[str, int]:
    """The days rollup (in full: one small GROUP BY over fact_play) and the counts `fresh` compares."""
    # Completion is a per-play ratio no aggregate keeps: its sum and count per day make any range's mean.
    con.execute(f"""CREATE OR REPLACE TABLE {SCHEMA}.days AS
                    SELECT date_key, count(*) AS plays, sum(completion) AS completion_sum,
                           count(completion) AS completion_n
                    FROM {main}.fact_play GROUP BY date_key ORDER BY date_key""")
    con.execute(f"""CREATE OR REPLACE TABLE {SCHEMA}.meta AS
                    SELECT '{VERSION}' AS version,
                           (SELECT count(*) FROM {main}.fact_play) AS fact_play_rows,
                           (SELECT count(*) FROM {main}.agg_user_track_month) AS track_month_rows,
                           (SELECT count(*) FROM {main}.agg_user_artist_month) AS artist_month_rows""")
    return {t: con.execute(f"SELECT count(*) FROM {SCHEMA}.{t}").fetchone()[0] for t in TABLES}


def _main(con: duckdb.DuckDBPyConnection) -> str:
    """The file's own main schema, named so that the temp views a build leaves over its new rows cannot shadow it."""
    return f'"{con.execute("SELECT current_database()").fetchone()[0]}".main'


def refresh(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rebuild every rollup from the star schema of `con`'s file → rows per rollup table."""
    main = _main(con)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table, (source, key) in _SOURCES.items():
        con.execute(f"""CREATE OR REPLACE TABLE {SCHEMA}.{table} AS SELECT * FROM ({_periods(f'{main}.{source}', key)})
                        ORDER BY grain, period_start, {key}""")
    for table, key in _DAY_KEYS.items():
        con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{table} AS {_day_counts(f'{main}.fact_play', key)} "
                    f"ORDER BY date_key, {key}")
    return _finish(con, main)


def snapshot(con: duckdb.DuckDBPyConnection, main: str, users: str) -> None:
    """Keep the monthly rows of the listeners an incremental build is about to replace (`users`: a SQL relation
    of user_key), for `update` to find what changed."""
    for table, (source, key) in _SOURCES.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rollup_before_{table} AS SELECT {_COLS.format(key=key)} "
                    f"FROM {main}.{source} WHERE user_key IN (SELECT user_key FROM {users})")
    for table, key in _DAY_KEYS.items():
        mine = f"(SELECT * FROM {main}.fact_play WHERE user_key IN (SELECT user_key FROM {users}))"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rollup_before_{table} AS {_day_counts(mine, key)}")


def update(con: duckdb.DuckDBPyConnection, main: str, users: str) -> dict[str, int]:
    """After an incremental build replaced `users`' rows: recompute the rollup rows of every track and artist whose
    monthly rows changed (their totals over all listeners, every period), the same rows `refresh` would write.
    A file whose rollups are missing or stale is refreshed in full."""
    if not fresh(con, before_update=True):
        for table in (*_SOURCES, *_DAY_KEYS):
            con.execute(f"DROP TABLE IF EXISTS _rollup_before_{table}")
        return refresh(con)
    for table, (source, key) in _SOURCES.items():
        cols = _COLS.format(key=key)
        now = f"(SELECT {cols} FROM {main}.{source} WHERE user_key IN (SELECT user_key FROM {users}))"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _rollup_keys AS SELECT DISTINCT {key} FROM (
                            (SELECT * FROM _rollup_before_{table} EXCEPT ALL SELECT * FROM {now}) UNION ALL
                            (SELECT * FROM {now} EXCEPT ALL SELECT * FROM _rollup_before_{table}))""")
        con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE {key} IN (SELECT {key} FROM _rollup_keys)")
        rows = f"(SELECT * FROM {main}.{source} WHERE {key} IN (SELECT {key} FROM _rollup_keys))"
        con.execute(f"INSERT INTO {SCHEMA}.{table} SELECT * FROM ({_periods(rows, key)}) "
                    f"ORDER BY grain, period_start, {key}")
        con.execute(f"DROP TABLE _rollup_before_{table}")
        con.execute("DROP TABLE _rollup_keys")
    for table, key in _DAY_KEYS.items():
        _update_days(con, main, users, table, key)
    return _finish(con, main)


def _update_days(con: duckdb.DuckDBPyConnection, main: str, users: str, table: str, key: str) -> None:
    """Day counts + (the listeners' counts now − their counts before); a (day, key) left with no play is gone."""
    mine = f"(SELECT * FROM {main}.fact_play WHERE user_key IN (SELECT user_key FROM {users}))"
    same = f"r.date_key = d.date_key AND r.{key} IS NOT DISTINCT FROM d.{key}"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _rollup_day_new AS
                    WITH d AS (SELECT date_key, {key}, sum(plays) AS plays FROM (
                                   SELECT date_key, {key}, -plays AS plays FROM _rollup_before_{table}
                                   UNION ALL {_day_counts(mine, key)}) GROUP BY ALL HAVING sum(plays) <> 0)
                    SELECT d.date_key, d.{key}, CAST(coalesce(r.plays, 0) + d.plays AS BIGINT) AS plays
                    FROM d LEFT JOIN {SCHEMA}.{table} r ON {same}""")
    con.execute(f"DELETE FROM {SCHEMA}.{table} r USING _rollup_day_new d WHERE {same}")
    con.execute(f"INSERT INTO {SCHEMA}.{table} SELECT * FROM _rollup_day_new WHERE plays > 0 "
                f"ORDER BY date_key, {key}")
    con.execute(f"DROP TABLE _rollup_before_{table}")
    con.execute("DROP TABLE _rollup_day_new")


def fresh(con: duckdb.DuckDBPyConnection, *, before_update: bool = False) -> bool:
    """True when the file has rollups of this VERSION and they were built from the rows it holds now (row counts
    are kept in the catalogue, so the check costs no scan). `before_update`: only the version is checked (the
    rows are being replaced)."""
    counts = "" if before_update else """
        AND m.fact_play_rows = (SELECT count(*) FROM fact_play)
        AND m.track_month_rows = (SELECT count(*) FROM agg_user_track_month)
        AND m.artist_month_rows = (SELECT count(*) FROM agg_user_artist_month)"""
    try:
        row = con.execute(f"SELECT m.version = '{VERSION}' {counts} FROM {SCHEMA}.meta m").fetchone()
    except (duckdb.CatalogException, duckdb.BinderException):  # no rollups, or rollups of an older layout
        return False
    return bool(row and row[0])


@dataclass(frozen=True)
class Cover:
    """A local date range as whole periods (grain, period_start) plus the ragged days at its ends, as inclusive
    yyyymmdd ranges of fact_play's date_key."""

    periods: tuple[tuple[str, date], ...]
    days: tuple[tuple[int, int], ...]

    @property
    def single(self) -> tuple[str, date] | None:
        """The one period the range is exactly, if it is one."""
        return self.periods[0] if len(self.periods) == 1 and not self.days else None

    def where(self, grain_col: str = "grain", start_col: str = "period_start") -> str:
        """SQL condition selecting the periods' rows of a rollup table (FALSE when there are none)."""
        conds = [f"({grain_col} = '{g}' AND {start_col} = DATE '{s.isoformat()}')" for g, s in self.periods]
        return " OR ".join(conds) or "FALSE"

    def day_where(self, col: str = "date_key") -> str:
        """SQL condition selecting the ragged days (FALSE when there are none)."""
        return " OR ".join(f"({col} BETWEEN {lo} AND {hi})" for lo, hi in self.days) or "FALSE"


def _dkey(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def cover(con: duckdb.DuckDBPyConnection, start: date | None, end: date | None) -> Cover:
    """The rollup periods and ragged days that make up [start, end] (None: open), within the file's data."""
    if start is None and end is None:
        return Cover((("all", ALL_TIME),), ())
    lo, hi = con.execute(f"SELECT min(date_key), max(date_key) FROM {SCHEMA}.days").fetchone()
    if lo is None:
        return Cover((), ())
    first, last = date(lo // 10000, lo // 100 % 100, lo % 100), date(hi // 10000, hi // 100 % 100, hi % 100)
    if (start or first) <= first and (end or last) >= last:
        return Cover((("all", ALL_TIME),), ())
    # An end beyond the data moves out to the end of its last year (a start before it, to the start of its first
    # year): the same plays, in whole periods (the top tracks of this year, when the data ends in July).
    start = date(first.year, 1, 1) if start is None or start <= first else start
    end = date(last.year, 12, 31) if end is None or end >= last else end
    if start > end:
        return Cover((), ())
    days: list[tuple[int, int]] = []
    m0 = start if start.day == 1 else _month_end(start) + timedelta(days=1)  # first whole month
    m1 = end.replace(day=1) if end == _month_end(end) else end.replace(day=1) - timedelta(days=1)
    m1 = m1.replace(day=1)  # first day of the last whole month
    if m0 > m1:  # no whole month inside: all days
        return Cover((), ((_dkey(start), _dkey(end)),))
    if start < m0:
        days.append((_dkey(start), _dkey(m0 - timedelta(days=1))))
    if end > _month_end(m1):
        days.append((_dkey(_month_end(m1) + timedelta(days=1)), _dkey(end)))
    periods: list[tuple[str, date]] = []
    m = m0
    while m <= m1:
        if m.month == 1 and date(m.year, 12, 1) <= m1:
            periods.append(("year", m))
            m = date(m.year + 1, 1, 1)
        else:
            periods.append(("month", m))
            m = _month_end(m) + timedelta(days=1)
    return Cover(tuple(periods), tuple(days))


def kpis(con: duckdb.DuckDBPyConnection, where: str, start: date | None, end: date | None,
         ms_per_hour: float) -> dict[str, Any]:
    """The metric layer's KPIs for every listener (`where`: its SQL condition on agg_user_day): additive totals,
    listeners, first and last date from agg_user_day, completion from the days rollup, distinct tracks and artists
    from their rollups (one period's row count, or a DISTINCT over the periods' rows and the day rollup's rows of
    the ragged days at the ends of the range)."""
    listeners, plays, streams, skips, hours, first, last = con.execute(f"""
        SELECT count(DISTINCT user_key), coalesce(sum(plays), 0), coalesce(sum(streams), 0), coalesce(sum(skips), 0),
               coalesce(sum(ms_played), 0) / {ms_per_hour}, min(date_key), max(date_key)
        FROM agg_user_day {where}""").fetchone()
    completion = con.execute(f"SELECT sum(completion_sum) / nullif(sum(completion_n), 0) FROM {SCHEMA}.days "
                             f"{where}").fetchone()[0]
    parts = cover(con, start, end)
    distinct = []
    for table, key in (("tracks", "track_id"), ("artists", "artist_id")):
        rows = f"SELECT {key} FROM {SCHEMA}.{table} WHERE {parts.where()}"
        if parts.single:
            sql = f"SELECT count(*) FROM ({rows})"
        else:
            day_rows = f"{SCHEMA}.day_{table} WHERE {parts.day_where()}"
            days = f" UNION ALL SELECT {key} FROM {day_rows}" if parts.days else ""
            sql = f"SELECT count(DISTINCT {key}) FROM ({rows}{days})"
        distinct.append(con.execute(sql).fetchone()[0])
    return {"plays": plays, "streams": streams, "hours": hours, "listeners": listeners,
            "distinct_tracks": distinct[0], "distinct_artists": distinct[1], "skips": skips, "first_date": first,
            "last_date": last, "skip_rate": skips / plays if plays else None, "mean_completion": completion}
