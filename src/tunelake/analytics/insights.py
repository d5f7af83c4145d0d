"""The metric layer: every insight is defined once here, and the dashboard, the report and the CLI all call it.

Each metric is a function ``(con, f: Filters, ...) -> DataFrame | dict`` on a DuckDB connection to the warehouse.
Dates in ``Filters`` are local calendar dates (the user's timezone), inclusive. Metrics read the aggregate tables
(``agg_user_day``, ``agg_user_day_hour``, ``agg_user_track_month``) whenever those answer the question exactly, so
a dashboard callback stays well under 300 ms; they fall back to ``fact_play`` otherwise.

Conventions shared by every metric:

* a *play* is any music playback in ``fact_play``; a *stream* is a play of at least 30 s (``is_stream``);
* *hours* are ``sum(ms_played) / 3 600 000`` over all plays;
* rates are ``None`` when their denominator is zero, never 0, so "no data" and "never" stay distinguishable.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd

from tunelake.errors import InputError, TunelakeError
from tunelake.warehouse import rollups
from tunelake.warehouse.metrics import AUDIO_FEATURES, kpi_sql

MS_PER_HOUR = 3_600_000.0
_MONTH_OF_DKEY = "make_date(CAST(date_key // 10000 AS INTEGER), CAST(date_key // 100 % 100 AS INTEGER), 1)"


class NotAllowed(TunelakeError):
    """A viewer asked for data outside what it may see (another listener's, or an admin-only view)."""

    exit_code = 3


@dataclass(frozen=True)
class Viewer:
    """Whose data a request may read. `user_key=None` is an admin (or a single-user command line): everyone.

    A listener's viewer is applied by the metric layer to every query, whatever the filters say, so isolation
    does not depend on the UI hiding a control: a filter on another listener or on a segment is refused."""

    user_key: int | None = None
    handle: str = ""

    @property
    def is_admin(self) -> bool:
        return self.user_key is None


ADMIN = Viewer()


def listener_viewer(user_key: int, handle: str = "") -> Viewer:
    """The viewer of one listener: only `user_key`'s rows."""
    return Viewer(int(user_key), handle)


@dataclass(frozen=True)
class Filters:
    """Which plays a metric looks at. Every field is optional; an empty Filters means everything the viewer may
    see (`viewer` defaults to ADMIN: the command line and the report see the whole warehouse)."""

    start: date | None = None  # local date, inclusive
    end: date | None = None  # local date, inclusive
    user_keys: tuple[int, ...] | None = None
    segment: int | None = None  # a segment of the latest `tunelake segment` run (table user_segment)
    viewer: Viewer = ADMIN

    def __post_init__(self) -> None:
        v = self.viewer
        if v.is_admin:
            return
        if self.segment is not None:
            raise NotAllowed("segments are shown to admins only", hint="sign in as an admin")
        if self.user_keys is not None and any(int(k) != v.user_key for k in self.user_keys):
            raise NotAllowed("a listener sees only their own data", hint="remove the listener filter")


ALL = Filters()


# --- helpers ----------------------------------------------------------------------------------------------------

def _dkey(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [name]
    ).fetchone()
    return bool(row and row[0])


def _user_conds(con: duckdb.DuckDBPyConnection, f: Filters, alias: str) -> list[str]:
    a = f"{alias}." if alias else ""
    conds: list[str] = []
    if not f.viewer.is_admin:  # always, first: nothing below can widen it
        conds.append(f"{a}user_key = {int(f.viewer.user_key)}")
    if f.user_keys is not None:
        keys = ", ".join(str(int(k)) for k in f.user_keys) or "NULL"
        conds.append(f"{a}user_key IN ({keys})")
    if f.segment is not None:
        if not table_exists(con, "user_segment"):
            raise TunelakeError("a segment filter needs segments, and this warehouse has none",
                                hint="run `tunelake segment` (or `tunelake run`) first")
        conds.append(f"{a}user_key IN (SELECT user_key FROM user_segment WHERE segment = {int(f.segment)})")
    return conds


def _where_between(con: duckdb.DuckDBPyConnection, f: Filters, alias: str, col: str, lo: str | None,
                   hi: str | None) -> str:
    """The filter's users (and segment) plus `lo <= col <= hi` as one WHERE clause; `lo`/`hi` are SQL literals in
    the column's own form, or None for an open end. Empty when nothing filters, so it can be pasted after FROM."""
    a = f"{alias}." if alias else ""
    conds = _user_conds(con, f, alias)
    if lo is not None:
        conds.append(f"{a}{col} >= {lo}")
    if hi is not None:
        conds.append(f"{a}{col} <= {hi}")
    return ("WHERE " + " AND ".join(conds)) if conds else ""


def _where(con: duckdb.DuckDBPyConnection, f: Filters, alias: str = "", date_col: str = "date_key") -> str:
    """SQL WHERE clause for tables carrying a yyyymmdd ``date_key`` (fact_play, agg_user_day, agg_user_day_hour)."""
    return _where_between(con, f, alias, date_col, None if f.start is None else str(_dkey(f.start)),
                          None if f.end is None else str(_dkey(f.end)))


def _month_aligned(f: Filters) -> bool:
    """True when the date range covers whole months, so agg_user_track_month answers it exactly."""
    if f.start is not None and f.start.day != 1:
        return False
    return f.end is None or f.end.day == calendar.monthrange(f.end.year, f.end.month)[1]


def _where_month(con: duckdb.DuckDBPyConnection, f: Filters, alias: str = "") -> str:
    """SQL WHERE clause for the monthly aggregates (``month_start``): the months the date range touches."""
    return _where_between(con, f, alias, "month_start",
                          None if f.start is None else f"DATE '{f.start.isoformat()}'",
                          None if f.end is None else f"DATE '{f.end.replace(day=1).isoformat()}'")


def _track_month_source(con: duckdb.DuckDBPyConnection, f: Filters) -> str:
    """A per-user/track/month relation for the filter: the aggregate when it is exact, fact_play otherwise."""
    if _month_aligned(f):
        return f"(SELECT * FROM agg_user_track_month {_where_month(con, f)})"
    return f"""(SELECT user_key, {_MONTH_OF_DKEY} AS month_start,
                       track_id,
                       min(artist_id) AS artist_id, min(album_id) AS album_id, count(*) AS plays,
                       count(*) FILTER (WHERE is_stream) AS streams, count(*) FILTER (WHERE is_skip) AS skips,
                       sum(ms_played) AS ms_played
                FROM fact_play {_where(con, f)} GROUP BY ALL)"""


def _rate(num: float | None, den: float | None) -> float | None:
    return None if not den else float(num or 0) / float(den)


def _none_if_nan(x: Any) -> Any:
    if x is None:
        return None
    try:
        return None if math.isnan(x) else float(x)
    except TypeError:
        return x


def entropy_bits(counts: list[float] | pd.Series) -> float:
    """Shannon entropy in bits of a distribution given as counts (zeros ignored); 0.0 for an empty one. Summed with
    `math.fsum`, so the result does not depend on the order of the counts (a GROUP BY returns them in any order)."""
    vals = [float(c) for c in counts if c and c > 0]
    total = math.fsum(vals)
    if total <= 0:
        return 0.0
    return float(-math.fsum((c / total) * math.log2(c / total) for c in vals))


# --- users and periods ------------------------------------------------------------------------------------------

def users(con: duckdb.DuckDBPyConnection, viewer: Viewer = ADMIN) -> pd.DataFrame:
    """Listeners for pickers: user_key, handle, plays, first/last play, segment name when segments exist (a
    listener's viewer: that listener only)."""
    only = "" if viewer.is_admin else f"WHERE u.user_key = {int(viewer.user_key)}"
    if table_exists(con, "user_segment"):
        return con.execute(f"""SELECT u.user_key, u.handle, u.plays, u.first_played_at, u.last_played_at,
                                     s.segment, s.segment_name
                              FROM dim_user u LEFT JOIN user_segment s USING (user_key) {only}
                              ORDER BY u.handle""").df()
    return con.execute(f"""SELECT user_key, handle, plays, first_played_at, last_played_at,
                                 CAST(NULL AS INTEGER) AS segment, CAST(NULL AS VARCHAR) AS segment_name
                          FROM dim_user u {only} ORDER BY handle""").df()


def resolve_user(con: duckdb.DuckDBPyConnection, user: int | str) -> tuple[int, str]:
    """(user_key, handle) for a handle or a user key; InputError naming the known handles otherwise."""
    if isinstance(user, int) or (isinstance(user, str) and user.lstrip("-").isdigit() and len(user) > 6):
        row = con.execute("SELECT user_key, handle FROM dim_user WHERE user_key = ?", [int(user)]).fetchone()
    else:
        row = con.execute("SELECT user_key, handle FROM dim_user WHERE handle = ?", [str(user)]).fetchone()
    if row is None:
        known = [r[0] for r in con.execute("SELECT handle FROM dim_user ORDER BY handle LIMIT 10").fetchall()]
        raise InputError(f"unknown user {user!r}", field="user",
                         hint=f"known users: {', '.join(known) or 'none'} (see `tunelake users`)")
    return int(row[0]), str(row[1])


def period_range(period: str | int | None) -> tuple[date | None, date | None]:
    """'2024' → the year, '2024-05' → the month, '2024-Q2' → the quarter, None/'all' → everything."""
    if period is None or str(period).lower() in ("", "all"):
        return None, None
    p = str(period).strip()
    if m := re.fullmatch(r"(\d{4})", p):
        y = int(m[1])
        return date(y, 1, 1), date(y, 12, 31)
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})", p):
        y, mo = int(m[1]), int(m[2])
        if 1 <= mo <= 12:
            return date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])
    if m := re.fullmatch(r"(\d{4})-?[Qq]([1-4])", p):
        y, q = int(m[1]), int(m[2])
        end_month = q * 3
        return date(y, end_month - 2, 1), date(y, end_month, calendar.monthrange(y, end_month)[1])
    raise InputError(f"cannot read period {period!r}", field="period", hint="use YYYY, YYYY-MM, YYYY-Qn or 'all'")


# --- headline numbers -------------------------------------------------------------------------------------------

def kpis(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> dict[str, Any]:
    """Headline numbers: listeners, plays, streams, hours, distinct tracks/artists, skip rate, mean completion.

    The SQL of each comes from the metric registry (`warehouse/metrics.py`), which also writes the Power BI measures,
    so the two cannot drift apart."""
    exprs = kpi_sql()
    if _wide(con, f):
        out = _kpis_from_rollups(con, f)
        assert out.keys() == exprs.keys(), "the rollup KPIs must be the registry's"
    else:
        row = con.execute(f"SELECT {', '.join(exprs.values())} FROM fact_play {_where(con, f)}").fetchone()
        out = dict(zip(exprs, row, strict=True))
    for key in ("listeners", "plays", "streams", "distinct_tracks", "distinct_artists", "skips"):
        out[key] = int(out[key])
    out["hours"] = float(out["hours"])
    out["skip_rate"] = _none_if_nan(out["skip_rate"])
    out["mean_completion"] = _none_if_nan(out["mean_completion"])
    out["first_date"], out["last_date"] = _from_dkey(out["first_date"]), _from_dkey(out["last_date"])
    return out


def _wide(con: duckdb.DuckDBPyConnection, f: Filters) -> bool:
    """True when `f` reads every listener (an admin with no listener or segment filter) and the file's rollups
    were built from its rows: those questions are answered from the rollups (`warehouse/rollups.py`)."""
    return f.viewer.is_admin and f.user_keys is None and f.segment is None and rollups.fresh(con)


def _kpis_from_rollups(con: duckdb.DuckDBPyConnection, f: Filters) -> dict[str, Any]:
    """The registry's KPIs for every listener, from the rollups (`warehouse/rollups.kpis`)."""
    return rollups.kpis(con, _where(con, f), f.start, f.end, MS_PER_HOUR)


def _from_dkey(k: int | None) -> date | None:
    return None if k is None else date(k // 10000, k // 100 % 100, k % 100)


def listening_over_time(con: duckdb.DuckDBPyConnection, f: Filters = ALL, grain: str = "month") -> pd.DataFrame:
    """Plays, streams, skips, hours and listeners per day/week (ISO, Monday start)/month, from agg_user_day."""
    if grain not in ("day", "week", "month"):
        raise InputError(f"unknown grain {grain!r}", field="grain", hint="use day, week or month")
    return con.execute(f"""
        SELECT CAST(date_trunc('{grain}', date) AS DATE) AS period, CAST(sum(plays) AS BIGINT) AS plays,
               CAST(sum(streams) AS BIGINT) AS streams, CAST(sum(skips) AS BIGINT) AS skips,
               sum(ms_played) / {MS_PER_HOUR} AS hours, count(DISTINCT user_key) AS listeners
        FROM agg_user_day {_where(con, f)}
        GROUP BY 1 ORDER BY 1""").df()


# --- top lists ----------------------------------------------------------------------------------------------------

def _top(con: duckdb.DuckDBPyConnection, f: Filters, n: int, key: str, select: str, join: str,
         src: str | None = None, rollup: tuple[str, str] | None = None) -> pd.DataFrame:
    """The top `n` of `key` by time listened. `rollup` (table, key column): the rollup that holds the totals and
    listeners of one period, used when `f` is exactly one period for every listener."""
    one = rollups.cover(con, f.start, f.end).single if rollup and _wide(con, f) else None
    if one and rollup:
        table, col = rollup
        t = f"""SELECT {col} AS k, plays, streams, ms_played AS ms, listeners FROM {rollups.SCHEMA}.{table}
                WHERE grain = '{one[0]}' AND period_start = DATE '{one[1].isoformat()}' AND {col} IS NOT NULL"""
    else:
        t = f"""SELECT {key} AS k, CAST(sum(plays) AS BIGINT) AS plays, CAST(sum(streams) AS BIGINT) AS streams,
                       sum(ms_played) AS ms, count(DISTINCT user_key) AS listeners
                FROM {src or _track_month_source(con, f)} AS m {join}
                WHERE {key} IS NOT NULL
                GROUP BY 1"""
    return con.execute(f"""
        WITH t AS ({t})
        SELECT CAST(row_number() OVER (ORDER BY t.ms DESC, t.plays DESC, t.k) AS INTEGER) AS rank, {select},
               t.plays, t.streams, t.ms / {MS_PER_HOUR} AS hours, t.listeners
        FROM t
        ORDER BY rank LIMIT {int(n)}""").df()


def top_artists(con: duckdb.DuckDBPyConnection, f: Filters = ALL, n: int = 10) -> pd.DataFrame:
    """Primary artists ranked by time listened: rank, artist_id, artist_name, plays, streams, hours, listeners."""
    src = None
    if _month_aligned(f) and table_exists(con, "agg_user_artist_month"):  # the smaller per-artist aggregate
        src = f"(SELECT * FROM agg_user_artist_month {_where_month(con, f)})"
    return _top(con, f, n, "m.artist_id",
                "t.k AS artist_id, (SELECT artist_name FROM dim_artist a WHERE a.artist_id = t.k) AS artist_name", "",
                src, rollup=("artists", "artist_id"))


def top_tracks(con: duckdb.DuckDBPyConnection, f: Filters = ALL, n: int = 10) -> pd.DataFrame:
    """Tracks ranked by time listened: rank, track_id, track_name, artist_name, plays, streams, hours, listeners."""
    df = _top(con, f, n, "m.track_id", "t.k AS track_id", "", rollup=("tracks", "track_id"))
    names = con.execute("SELECT track_id, track_name, artist_name, album_name FROM dim_track WHERE track_id IN "
                        "(SELECT unnest(?))", [list(df["track_id"])]).df()
    out = df.merge(names, on="track_id", how="left")
    return out[["rank", "track_id", "track_name", "artist_name", "album_name", "plays", "streams", "hours",
                "listeners"]]


def top_albums(con: duckdb.DuckDBPyConnection, f: Filters = ALL, n: int = 10) -> pd.DataFrame:
    """Albums ranked by time listened: rank, album_id, album_name, artist_name, release_year, plays, hours…"""
    df = _top(con, f, n, "m.album_id", "t.k AS album_id", "")
    names = con.execute("""SELECT al.album_id, al.album_name, ar.artist_name, al.release_year
                           FROM dim_album al LEFT JOIN dim_artist ar USING (artist_id)
                           WHERE al.album_id IN (SELECT unnest(?))""", [list(df["album_id"])]).df()
    out = df.merge(names, on="album_id", how="left")
    return out[["rank", "album_id", "album_name", "artist_name", "release_year", "plays", "streams", "hours",
                "listeners"]]


def top_genres(con: duckdb.DuckDBPyConnection, f: Filters = ALL, n: int = 10) -> pd.DataFrame:
    """Genres (the track's primary genre) by time listened: rank, genre, plays, streams, hours, listeners, share.

    ``share`` is the genre's fraction of the hours of plays whose genre is known."""
    df = _top(con, f, 10_000, "d.primary_genre", "t.k AS genre",
              "JOIN dim_track AS d ON d.track_id = m.track_id")
    total = df["hours"].sum()
    df["share"] = df["hours"] / total if total else None
    return df.head(int(n)).reset_index(drop=True)


# --- time patterns ----------------------------------------------------------------------------------------------

def hour_weekday_heatmap(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """All 7 × 24 cells (weekday 1 = Monday … 7, hour 0–23, local time) with plays and hours, zeros included."""
    return con.execute(f"""
        WITH cells AS (
            SELECT w.weekday, h.hour FROM range(1, 8) AS w(weekday), range(0, 24) AS h(hour)),
        a AS (
            SELECT local_weekday AS weekday, local_hour AS hour, sum(plays) AS plays, sum(ms_played) AS ms
            FROM agg_user_day_hour {_where(con, f)} GROUP BY 1, 2)
        SELECT CAST(c.weekday AS INTEGER) AS weekday, CAST(c.hour AS INTEGER) AS hour,
               CAST(coalesce(a.plays, 0) AS BIGINT) AS plays, coalesce(a.ms, 0) / {MS_PER_HOUR} AS hours
        FROM cells c LEFT JOIN a ON a.weekday = c.weekday AND a.hour = c.hour
        ORDER BY 1, 2""").df()


def sessions(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """One row per listening session (fact_play.session_id: a gap over session_gap_minutes starts a new one):
    user_key, session_id, started_at, ended_at, plays, hours, duration_min (first start to last end)."""
    return con.execute(f"""
        SELECT user_key, session_id, min(started_at) AS started_at, max(ended_at) AS ended_at,
               count(*) AS plays, sum(ms_played) / {MS_PER_HOUR} AS hours,
               date_diff('second', min(started_at), max(ended_at)) / 60.0 AS duration_min
        FROM fact_play {_where(con, f)}
        GROUP BY 1, 2 ORDER BY 1, 2""").df()


def session_stats(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> dict[str, Any]:
    """Session count, mean/median plays and minutes per session, longest session, sessions per active day."""
    row = con.execute(f"""
        WITH s AS (
            SELECT user_key, session_id, count(*) AS plays,
                   date_diff('second', min(started_at), max(ended_at)) / 60.0 AS minutes
            FROM fact_play {_where(con, f)} GROUP BY 1, 2)
        SELECT count(*), avg(plays), median(plays), avg(minutes), median(minutes), max(minutes) FROM s""").fetchone()
    days = con.execute(f"SELECT count(*) FROM agg_user_day {_where(con, f)}").fetchone()[0]
    n, mean_plays, median_plays, mean_min, median_min, max_min = row
    return {"sessions": int(n), "mean_plays": _none_if_nan(mean_plays), "median_plays": _none_if_nan(median_plays),
            "mean_minutes": _none_if_nan(mean_min), "median_minutes": _none_if_nan(median_min),
            "longest_minutes": _none_if_nan(max_min), "sessions_per_active_day": _rate(n, days)}


def streaks(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Runs of consecutive local days with any music playback, per user: user_key, start, end, days; longest
    first. A day counts whatever was played (even a single skipped play)."""
    return con.execute(f"""
        WITH d AS (SELECT DISTINCT user_key, date FROM agg_user_day {_where(con, f)}),
        g AS (SELECT user_key, date,
                     date - CAST(row_number() OVER (PARTITION BY user_key ORDER BY date) AS INTEGER) AS grp
              FROM d)
        SELECT user_key, min(date) AS start, max(date) AS "end", CAST(count(*) AS INTEGER) AS days
        FROM g GROUP BY user_key, grp
        ORDER BY days DESC, start, user_key""").df()


# --- behaviour ----------------------------------------------------------------------------------------------------

def skip_completion(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Per month: plays, skips, skip_rate, mean_completion (ms_played / track length, where the length is known)
    and full_listen_rate (completion ≥ 0.9 among plays with a known length)."""
    return con.execute(f"""
        SELECT {_MONTH_OF_DKEY} AS month, count(*) AS plays,
               count(*) FILTER (WHERE is_skip) AS skips,
               count(*) FILTER (WHERE is_skip) / count(*) AS skip_rate,
               avg(completion) AS mean_completion,
               count(*) FILTER (WHERE completion >= 0.9) / nullif(count(completion), 0) AS full_listen_rate
        FROM fact_play {_where(con, f)}
        GROUP BY 1 ORDER BY 1""").df()


def discovery_rate(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Per month: the share of plays of artists (and tracks) the user first heard that month.

    "First heard" looks at the user's whole history, not only the filtered window, so a filter never turns an old
    favourite into a discovery. Columns: month, plays, new_artists, new_tracks, artist_discovery_rate,
    track_discovery_rate (plays of newly heard artists/tracks ÷ plays). Months are whole calendar months: a window
    that starts or ends mid-month includes the whole of that month."""
    users_only = Filters(user_keys=f.user_keys, segment=f.segment, viewer=f.viewer)
    start = f"DATE '{f.start.replace(day=1).isoformat()}'" if f.start else "DATE '0001-01-01'"
    end = f"DATE '{f.end.isoformat()}'" if f.end else "DATE '9999-12-31'"
    # first_month is precomputed over the user's whole history by the aggregate models.
    tracks = f"(SELECT * FROM agg_user_track_month {_where_month(con, users_only)})"
    artists = f"(SELECT * FROM agg_user_artist_month {_where_month(con, users_only)})"
    return con.execute(f"""
        WITH t AS (
            SELECT month_start, sum(plays) AS plays, count(*) FILTER (WHERE first_month) AS new_tracks,
                   sum(plays) FILTER (WHERE first_month) AS new_track_plays
            FROM {tracks} WHERE artist_id IS NOT NULL AND month_start BETWEEN {start} AND {end} GROUP BY 1),
        a AS (
            SELECT month_start, count(*) FILTER (WHERE first_month) AS new_artists,
                   sum(plays) FILTER (WHERE first_month) AS new_artist_plays
            FROM {artists} WHERE month_start BETWEEN {start} AND {end} GROUP BY 1)
        SELECT t.month_start AS month, CAST(t.plays AS BIGINT) AS plays,
               coalesce(a.new_artists, 0) AS new_artists, t.new_tracks,
               coalesce(a.new_artist_plays, 0) / t.plays AS artist_discovery_rate,
               coalesce(t.new_track_plays, 0) / t.plays AS track_discovery_rate
        FROM t LEFT JOIN a USING (month_start) ORDER BY 1""").df().fillna(
        {"artist_discovery_rate": 0.0, "track_discovery_rate": 0.0})


def diversity(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> dict[str, Any]:
    """Shannon entropy (bits) of the play distribution over primary artists and over track genres, pooled over
    the filtered plays, with the counts it came from. 0 bits = one artist; log2(n) = n artists played equally;
    None when no play has a known artist (genre)."""
    src = _track_month_source(con, f)
    arts = con.execute(f"SELECT sum(plays) FROM {src} WHERE artist_id IS NOT NULL GROUP BY artist_id").fetchall()
    gens = con.execute(f"""SELECT sum(m.plays) FROM {src} m JOIN dim_track d USING (track_id)
                           WHERE d.primary_genre IS NOT NULL GROUP BY d.primary_genre""").fetchall()
    a = [r[0] for r in arts]
    g = [r[0] for r in gens]
    # No artist (genre) known: the entropy is unknown (None), not 0 bits — 0 would claim a single artist.
    return {"artist_entropy_bits": entropy_bits(a) if a else None, "genre_entropy_bits": entropy_bits(g) if g else None,
            "artists": len(a), "genres": len(g),
            "artist_entropy_max_bits": math.log2(len(a)) if a else None,
            "genre_entropy_max_bits": math.log2(len(g)) if g else None}


def mainstreamness(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> dict[str, Any]:
    """Play-weighted mean Spotify popularity (0–100) of the tracks played, over plays whose popularity is known;
    ``coverage`` is the share of plays it is based on."""
    src = _track_month_source(con, f)
    row = con.execute(f"""
        SELECT sum(m.plays * d.popularity) / nullif(sum(m.plays) FILTER (WHERE d.popularity IS NOT NULL), 0),
               sum(m.plays) FILTER (WHERE d.popularity IS NOT NULL), sum(m.plays)
        FROM {src} m LEFT JOIN dim_track d USING (track_id)""").fetchone()
    mean, known, total = row
    return {"mean_popularity": _none_if_nan(mean), "plays_with_popularity": int(known or 0),
            "coverage": _rate(known, total)}


def eras(con: duckdb.DuckDBPyConnection, f: Filters = ALL, by: str = "decade") -> pd.DataFrame:
    """Plays by the release year (``by='year'``) or decade (``by='decade'``, e.g. 1990) of the track's album,
    over plays whose release year is known: era, plays, hours, share (of those plays)."""
    if by not in ("year", "decade"):
        raise InputError(f"unknown era grouping {by!r}", field="by", hint="use year or decade")
    expr = "d.release_year" if by == "year" else "CAST(d.release_year // 10 * 10 AS INTEGER)"
    src = _track_month_source(con, f)
    return con.execute(f"""
        SELECT CAST({expr} AS INTEGER) AS era, CAST(sum(m.plays) AS BIGINT) AS plays,
               sum(m.ms_played) / {MS_PER_HOUR} AS hours,
               sum(m.plays) / sum(sum(m.plays)) OVER () AS share
        FROM {src} m JOIN dim_track d USING (track_id)
        WHERE d.release_year IS NOT NULL GROUP BY 1 ORDER BY 1""").df()


def platforms(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> pd.DataFrame:
    """Plays and hours per normalised platform (android, ios, windows, …), with each platform's share of plays."""
    return con.execute(f"""
        SELECT coalesce(platform, 'unknown') AS platform, count(*) AS plays, sum(ms_played) / {MS_PER_HOUR} AS hours,
               count(*) / sum(count(*)) OVER () AS share
        FROM fact_play {_where(con, f)} GROUP BY 1 ORDER BY plays DESC, platform""").df()


def audio_profile(con: duckdb.DuckDBPyConnection, f: Filters = ALL) -> dict[str, Any]:
    """Play-weighted means of the audio features over plays of tracks whose features are known, plus
    ``coverage`` (share of plays with features) and ``plays_with_features``. Means are None without coverage."""
    src = _track_month_source(con, f)
    means = ", ".join(f"sum(m.plays * d.{a}) FILTER (WHERE d.has_audio_features) / "
                      f"nullif(sum(m.plays) FILTER (WHERE d.has_audio_features), 0) AS {a}" for a in AUDIO_FEATURES)
    df = con.execute(f"""
        SELECT {means}, sum(m.plays) FILTER (WHERE d.has_audio_features) AS known, sum(m.plays) AS total
        FROM {src} m LEFT JOIN dim_track d USING (track_id)""").df()
    row = df.iloc[0]
    out: dict[str, Any] = {a: _none_if_nan(row[a]) for a in AUDIO_FEATURES}
    known = _none_if_nan(row["known"])
    out["plays_with_features"] = int(known or 0)
    out["coverage"] = _rate(known, _none_if_nan(row["total"]))
    return out


# --- Wrapped ------------------------------------------------------------------------------------------------------

def wrapped(con: duckdb.DuckDBPyConnection, user: int | str, period: str | int | None = None) -> dict[str, Any]:
    """A Wrapped-style summary of one listener for a period ('2024', '2024-05', '2024-Q2', None = all time)."""
    user_key, handle = resolve_user(con, user)
    start, end = period_range(period)
    f = Filters(start=start, end=end, user_keys=(user_key,))
    k = kpis(con, f)
    if k["plays"] == 0:
        raise InputError(f"{handle} has no plays in {period or 'the warehouse'}", field="period",
                         hint="pick a period with listening (see `tunelake insights --user NAME` for all time)")
    # The dozen metric queries below are independent and each is mostly fixed cost (planning, result conversion:
    # 2–12 ms on a few thousand rows), so they run two at a time on cursors of the same database: 85–103 ms one
    # after the other at 10.3M plays, 55–67 ms so.
    parts: dict[str, Callable[[duckdb.DuckDBPyConnection], Any]] = {
        "over": lambda c: listening_over_time(c, f, "month"), "heat": lambda c: hour_weekday_heatmap(c, f),
        "streaks": lambda c: streaks(c, f), "disc": lambda c: discovery_rate(c, f), "eras": lambda c: eras(c, f),
        "platforms": lambda c: platforms(c, f), "sessions": lambda c: session_stats(c, f),
        "diversity": lambda c: diversity(c, f), "mainstreamness": lambda c: mainstreamness(c, f),
        "audio": lambda c: audio_profile(c, f), "artists": lambda c: top_artists(c, f, 5),
        "tracks": lambda c: top_tracks(c, f, 5), "genres": lambda c: top_genres(c, f, 5),
        "segment": lambda c: _segment_of(c, user_key)}
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(_on_cursor, con, fn) for name, fn in parts.items()}
        r = {name: fut.result() for name, fut in futures.items()}
    over, heat, st, disc, era, plat = r["over"], r["heat"], r["streaks"], r["disc"], r["eras"], r["platforms"]
    top_month = over.sort_values(["hours", "period"], ascending=[False, True]).iloc[0]
    by_hour = heat.groupby("hour")["plays"].sum()
    by_day = heat.groupby("weekday")["plays"].sum()
    new_artists = int(disc["new_artists"].sum()) if len(disc) else 0
    return {
        "user_key": user_key, "handle": handle, "period": str(period) if period else "all time",
        "start": k["first_date"], "end": k["last_date"],
        "minutes": round(k["hours"] * 60), "hours": k["hours"], "plays": k["plays"], "streams": k["streams"],
        "distinct_tracks": k["distinct_tracks"], "distinct_artists": k["distinct_artists"],
        "skip_rate": k["skip_rate"], "mean_completion": k["mean_completion"],
        "top_artists": r["artists"][["artist_name", "hours", "plays"]].to_dict("records"),
        "top_tracks": r["tracks"][["track_name", "artist_name", "hours", "plays"]].to_dict("records"),
        "top_genres": r["genres"][["genre", "hours", "share"]].to_dict("records"),
        "top_month": {"month": pd.Timestamp(top_month["period"]).date(), "hours": float(top_month["hours"])},
        "peak_hour": int(by_hour.idxmax()), "peak_weekday": calendar.day_name[int(by_day.idxmax()) - 1],
        "longest_streak": ({"days": int(st.iloc[0]["days"]), "start": pd.Timestamp(st.iloc[0]["start"]).date(),
                            "end": pd.Timestamp(st.iloc[0]["end"]).date()} if len(st) else None),
        "sessions": r["sessions"],
        "new_artists": new_artists,
        "artist_discovery_rate": (float((disc["artist_discovery_rate"] * disc["plays"]).sum() / disc["plays"].sum())
                                  if len(disc) else None),
        "diversity": r["diversity"],
        "mainstreamness": r["mainstreamness"],
        "top_decade": int(era.sort_values("plays", ascending=False).iloc[0]["era"]) if len(era) else None,
        "top_platform": plat.iloc[0]["platform"] if len(plat) else None,
        "audio_profile": r["audio"],
        "segment": r["segment"],
    }


def _on_cursor(con: duckdb.DuckDBPyConnection, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
    """`fn` on a cursor of its own (a DuckDB connection is not for two threads at once), closed afterwards."""
    cur = con.cursor()
    try:
        return fn(cur)
    finally:
        cur.close()


def _segment_of(con: duckdb.DuckDBPyConnection, user_key: int) -> dict[str, Any] | None:
    if not table_exists(con, "user_segment"):
        return None
    row = con.execute("SELECT segment, segment_name FROM user_segment WHERE user_key = ?", [user_key]).fetchone()
    return {"segment": int(row[0]), "name": row[1]} if row else None


def last_days(con: duckdb.DuckDBPyConnection, days: int, f: Filters = ALL) -> Filters:
    """Filters for the last ``days`` local days that have data (handy for 'last 4 weeks' views)."""
    last = con.execute(f"SELECT max(date) FROM agg_user_day {_where(con, f)}").fetchone()[0]
    if last is None:
        return f
    return Filters(start=last - timedelta(days=days - 1), end=last, user_keys=f.user_keys, segment=f.segment,
                   viewer=f.viewer)
