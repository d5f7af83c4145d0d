"""Year in review: one listener's calendar year, as Spotify Wrapped shows it and with what Wrapped never shows.

Built from the metric layer (`analytics.insights`), so every figure means what it means on the dashboard: minutes
are all music ``ms_played`` of the year's local days, top lists rank by time listened, a streak counts local days
with any music playback (clipped to the year), discovery judges "first heard" over the whole history. Figures
with no data behind them are None (shown as "–"), never 0: a year with no known genre has no top genres, a
listener with no previous year has no comparison, one whose history starts this year gets ``first_year`` so
"everything was new" is not read as adventurousness.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from tunelake.analytics import insights as m
from tunelake.errors import InputError


def _year_filters(user_key: int, year: int) -> m.Filters:
    return m.Filters(start=date(year, 1, 1), end=date(year, 12, 31), user_keys=(user_key,))


def biggest_day(con: duckdb.DuckDBPyConnection, f: m.Filters) -> dict[str, Any] | None:
    """The local day with the most minutes of music (the earliest of equal days): date, minutes, plays."""
    row = con.execute(f"""SELECT date, sum(ms_played) / 60000.0, CAST(sum(plays) AS BIGINT)
                          FROM agg_user_day {m._where(con, f)}
                          GROUP BY date ORDER BY 2 DESC, date LIMIT 1""").fetchone()
    return None if row is None else {"date": row[0], "minutes": float(row[1]), "plays": int(row[2])}


def skips_and_completion(con: duckdb.DuckDBPyConnection, f: m.Filters) -> dict[str, Any]:
    """Skips, mean completion and the share of plays heard to ≥ 90 %, each over the plays that can tell: skips over
    extended-history plays (account data and the Web API carry no skip flag or end reason, so their plays would
    pass for never skipped), completion over plays whose track length is known, except Web API plays (the API does
    not say how long a track played; ms_played is the track's length). `skip_known` and `completion_known` say
    how many plays each figure is based on; a figure with none is None."""
    row = con.execute(f"""
        SELECT count(*) FILTER (WHERE source = 'extended'), count(*) FILTER (WHERE source = 'extended' AND is_skip),
               avg(completion) FILTER (WHERE source <> 'api'),
               count(*) FILTER (WHERE completion >= 0.9 AND source <> 'api'),
               count(completion) FILTER (WHERE source <> 'api')
        FROM fact_play {m._where(con, f)}""").fetchone()
    skip_known, skips, mean, full, known = row
    return {"skips": int(skips) if skip_known else None, "skip_rate": m._rate(skips, skip_known),
            "skip_known": int(skip_known), "mean_completion": m._none_if_nan(mean),
            "full_listen_rate": m._rate(full, known), "completion_known": int(known)}


def podcasts(con: duckdb.DuckDBPyConnection, f: m.Filters) -> dict[str, Any]:
    """Spoken word kept apart from music: minutes, plays, shows, and the show listened to longest (None when no
    episode or audiobook was played)."""
    if not m.table_exists(con, "fact_episode_play"):
        return {"minutes": 0.0, "plays": 0, "shows": 0, "top_show": None}
    where = m._where(con, f)  # never empty: the filter names the listener
    row = con.execute(f"""SELECT coalesce(sum(ms_played), 0) / 60000.0, count(*), count(DISTINCT show_name)
                          FROM fact_episode_play {where}""").fetchone()
    top = con.execute(f"""SELECT show_name FROM fact_episode_play {where} AND show_name IS NOT NULL
                          GROUP BY 1 ORDER BY sum(ms_played) DESC, 1 LIMIT 1""").fetchone()
    return {"minutes": float(row[0]), "plays": int(row[1]), "shows": int(row[2]), "top_show": top[0] if top else None}


def personality(con: duckdb.DuckDBPyConnection, user_key: int, top: int = 3) -> dict[str, Any] | None:
    """The listener's segment as a personality: its name, its size and the features that set it apart most
    (largest |z-score| of the segment mean). None before segmentation has run. Segments are fitted on whole
    histories, so this describes the listener, not only the year."""
    if not (m.table_exists(con, "user_segment") and m.table_exists(con, "segment_profile")):
        return None
    row = con.execute("SELECT segment, segment_name FROM user_segment WHERE user_key = ?", [user_key]).fetchone()
    if row is None:
        return None
    traits = con.execute("""SELECT feature, z_score, size, share FROM segment_profile WHERE segment = ?
                            ORDER BY abs(z_score) DESC, feature LIMIT ?""", [row[0], top]).df()
    return {"segment": int(row[0]), "name": str(row[1]),
            "size": int(traits["size"].iloc[0]) if len(traits) else None,
            "traits": [{"feature": f, "z_score": float(z)} for f, z in zip(traits["feature"], traits["z_score"],
                                                                             strict=True)]}


def _top5(con: duckdb.DuckDBPyConnection, f: m.Filters) -> dict[str, list[dict[str, Any]]]:
    return {
        "top_artists": m.top_artists(con, f, 5)[["artist_name", "hours", "plays"]].to_dict("records"),
        "top_tracks": m.top_tracks(con, f, 5)[["track_name", "artist_name", "hours", "plays"]].to_dict("records"),
        "top_genres": m.top_genres(con, f, 5)[["genre", "hours", "share"]].to_dict("records"),
    }


def years(con: duckdb.DuckDBPyConnection, user_key: int) -> list[int]:
    """The calendar years (local) in which the listener played music, oldest first."""
    return [int(r[0]) for r in con.execute(
        "SELECT DISTINCT year(date) FROM agg_user_day WHERE user_key = ? ORDER BY 1", [user_key]).fetchall()]


def year_in_review(con: duckdb.DuckDBPyConnection, user: int | str, year: int) -> dict[str, Any]:
    """Everything the Wrapped card and page show for one listener and calendar year (local dates)."""
    user_key, handle = m.resolve_user(con, user)
    f = _year_filters(user_key, int(year))
    k = m.kpis(con, f)
    if k["plays"] == 0:
        have = years(con, user_key)
        raise InputError(f"{handle} played no music in {year}", field="year",
                         hint=f"years with listening: {', '.join(map(str, have)) or 'none'}")
    first_play = con.execute("SELECT min(date) FROM agg_user_day WHERE user_key = ?", [user_key]).fetchone()[0]
    streak = m.streaks(con, f)
    disc = m.discovery_rate(con, f)
    heat = m.hour_weekday_heatmap(con, f)
    prev_f = _year_filters(user_key, int(year) - 1)
    prev = m.kpis(con, prev_f)
    out: dict[str, Any] = {
        "user_key": user_key, "handle": handle, "year": int(year),
        "minutes": k["hours"] * 60, "plays": k["plays"], "streams": k["streams"],
        "distinct_tracks": k["distinct_tracks"], "distinct_artists": k["distinct_artists"],
        "active_days": int(con.execute(f"SELECT count(*) FROM agg_user_day {m._where(con, f)}").fetchone()[0]),
        **_top5(con, f),
        "personality": personality(con, user_key),
        "biggest_day": biggest_day(con, f),
        "longest_streak": ({"days": int(streak.iloc[0]["days"]), "start": pd.Timestamp(streak.iloc[0]["start"]).date(),
                            "end": pd.Timestamp(streak.iloc[0]["end"]).date()} if len(streak) else None),
        "peak_hour": int(heat.groupby("hour")["plays"].sum().idxmax()),
        "peak_weekday": calendar.day_name[int(heat.groupby("weekday")["plays"].sum().idxmax()) - 1],
        "discovery": {
            "new_artists": int(disc["new_artists"].sum()), "new_tracks": int(disc["new_tracks"].sum()),
            "artist_discovery_rate": (float((disc["artist_discovery_rate"] * disc["plays"]).sum()
                                            / disc["plays"].sum()) if disc["plays"].sum() else None),
            "first_year": first_play is not None and first_play.year == int(year),
        },
        "previous_year": None,
        "beyond_wrapped": {
            **skips_and_completion(con, f),
            "sessions": m.session_stats(con, f), "podcasts": podcasts(con, f),
        },
    }
    if prev["plays"]:
        prev_top = m.top_artists(con, prev_f, 5)["artist_name"].tolist()
        now_top = [r["artist_name"] for r in out["top_artists"]]
        out["previous_year"] = {
            "year": int(year) - 1, "minutes": prev["hours"] * 60,
            "minutes_change": (k["hours"] / prev["hours"] - 1) if prev["hours"] else None,
            "top_artist": prev_top[0] if prev_top else None,
            "top_artists_kept": [a for a in now_top if a in prev_top],
            "distinct_artists": prev["distinct_artists"],
        }
    return out
