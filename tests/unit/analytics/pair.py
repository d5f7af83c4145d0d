"""A second hand-made warehouse, for comparing listeners and the year in review: three listeners, five tracks, plays
typed in by hand, aggregates built by the real aggregate models. Every expected value in test_compare.py and
test_wrapped.py is worked out from the rows below (all tracks last 200 s; local time = UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from tunelake.warehouse.tables import TABLES

from .conftest import MODELS, create_tables, insert

ANA, BEN, CY = 10, 20, 30

# track: (artist, genre or None)
TRACKS = {"s1": ("x1", "rock"), "s2": ("x1", "rock"), "s3": ("x2", "jazz"), "s4": ("x3", "pop"), "s5": ("x4", None)}

# (user, UTC end time, track, ms_played, skipped, session)
PLAYS = [
    (ANA, "2023-03-11 12:00:00", "s2", 200_000, False, 1),
    (ANA, "2024-03-08 12:00:00", "s3", 100_000, False, 2),  # Friday
    (ANA, "2024-03-09 12:00:00", "s1", 200_000, False, 3),
    (ANA, "2024-03-10 12:00:00", "s1", 200_000, False, 4),  # Sunday: the biggest day, 610 s
    (ANA, "2024-03-10 12:10:00", "s1", 200_000, False, 4),
    (ANA, "2024-03-10 12:20:00", "s3", 200_000, False, 4),
    (ANA, "2024-03-10 12:21:00", "s4", 10_000, True, 4),  # a skip: not a stream, but s4 and x3 are "played"
    (ANA, "2024-03-12 12:00:00", "s3", 200_000, False, 5),
    (ANA, "2024-03-13 12:00:00", "s1", 200_000, False, 6),
    (BEN, "2024-06-01 10:00:00", "s1", 200_000, False, 1),
    (BEN, "2024-06-01 10:10:00", "s4", 200_000, False, 1),
    (BEN, "2024-06-01 10:20:00", "s4", 200_000, False, 1),
    (BEN, "2024-06-01 10:30:00", "s5", 200_000, False, 1),
    (BEN, "2024-06-01 10:40:00", "s3", 200_000, False, 1),
    (CY, "2022-05-01 10:00:00", "s5", 100_000, False, 1),  # account data: no skip information
    (CY, "2022-05-02 10:00:00", "s5", 200_000, False, 2),  # Web API: ms_played is the duration, not measured
]
SOURCES = {len(PLAYS) - 2: "account", len(PLAYS) - 1: "api"}  # every other play is from the extended history

# (user, UTC end time, show, ms_played)
EPISODES = [
    (ANA, "2024-04-01 08:00:00", "Deep Talk", 1_800_000),
    (ANA, "2024-04-02 08:00:00", "Deep Talk", 1_800_000),
    (ANA, "2024-04-03 08:00:00", "News", 600_000),
    (ANA, "2023-04-03 08:00:00", "News", 600_000),  # the year before: not in 2024's figures
]


def _timing(user: int, end: str, ms: int, source: str = "extended") -> dict:
    ended = datetime.fromisoformat(end)
    started = ended - timedelta(milliseconds=ms)
    return {"user_key": user, "started_at": started, "ended_at": ended, "ended_at_local": ended,
            "date_key": started.year * 10000 + started.month * 100 + started.day, "local_hour": started.hour,
            "local_weekday": started.isoweekday(), "ms_played": ms, "source": source, "media_type": "audio"}


def build_pair(con: duckdb.DuckDBPyConnection, segments: bool = True) -> None:
    con.execute("SET TimeZone = 'UTC'")
    create_tables(con, [t.name for t in TABLES.values() if t.layer != "analytics"])
    insert(con, "dim_user", [{"user_key": k, "handle": h, "timezone": "UTC", "timezone_source": "configured",
                              "plays": sum(p[0] == k for p in PLAYS)}
                             for k, h in ((ANA, "ana"), (BEN, "ben"), (CY, "cy"))])
    insert(con, "dim_artist", [{"artist_id": a, "artist_name": f"Artist {a}", "is_surrogate": False}
                               for a in ("x1", "x2", "x3", "x4")])
    insert(con, "dim_track", [
        {"track_id": t, "track_name": f"Track {t}", "artist_id": a, "artist_name": f"Artist {a}",
         "primary_genre": g, "duration_ms": 200_000, "has_audio_features": False, "in_catalog": True}
        for t, (a, g) in TRACKS.items()])
    con.execute("""INSERT INTO dim_date SELECT CAST(strftime(d, '%Y%m%d') AS INTEGER), d, year(d), quarter(d),
                          month(d), date_trunc('month', d), day(d), isodow(d), dayname(d), isodow(d) >= 6, week(d)
                   FROM (SELECT CAST(unnest(generate_series(DATE '2022-01-01', DATE '2024-12-31', INTERVAL 1 DAY))
                         AS DATE) AS d)""")
    insert(con, "fact_play", [
        {**_timing(user, end, ms, SOURCES.get(i, "extended")), "play_id": f"p{i}", "track_id": tid,
         "artist_id": TRACKS[tid][0],
         "reason_end": "fwdbtn" if skipped else "trackdone", "shuffle": False, "platform": "android",
         "is_stream": ms >= 30_000, "is_skip": skipped, "completion": min(ms / 200_000, 1.0), "session_id": session}
        for i, (user, end, tid, ms, skipped, session) in enumerate(PLAYS)])
    insert(con, "fact_episode_play", [
        {**_timing(user, end, ms), "play_id": f"e{i}", "content_type": "episode", "item_id": f"ep{i}",
         "item_name": f"Episode {i}", "show_name": show}
        for i, (user, end, show, ms) in enumerate(EPISODES)])
    aggs = ["agg_user_day", "agg_user_day_hour", "agg_user_track_month"]
    aggs += sorted(t.name for t in TABLES.values() if t.kind == "agg" and t.name not in aggs)
    for agg in aggs:
        con.execute(f"INSERT INTO {agg} BY NAME {(MODELS / f'{agg}.sql').read_text()}")
    if segments:
        create_tables(con, ["user_segment", "segment_profile"])
        insert(con, "user_segment", [
            {"user_key": ANA, "segment": 0, "segment_name": "Night owls", "x": 0.0, "y": 0.0, "run_id": "r"},
            {"user_key": BEN, "segment": 1, "segment_name": "Daytime loyalists", "x": 1.0, "y": 1.0, "run_id": "r"}])
        insert(con, "segment_profile", [
            {"segment": 0, "segment_name": "Night owls", "size": 1, "share": 0.5, "feature": f, "mean": 0.0,
             "z_score": z, "run_id": "r"}
            for f, z in (("night_share", 1.5), ("skip_rate", -2.0), ("log_plays", 0.3), ("weekend_share", 0.1))])
