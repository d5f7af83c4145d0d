"""The year in review against values worked out by hand from pair.py (every track lasts 200 s)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from tunelake.analytics.wrapped import year_in_review, years
from tunelake.errors import InputError

from .pair import ANA, build_pair


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(":memory:")
    build_pair(c)
    return c


def test_headline_and_top_lists(con) -> None:
    r = year_in_review(con, "ana", 2024)
    # 2024: s3 100 s + s1 200 + (s1 200 + s1 200 + s3 200 + s4 10) + s3 200 + s1 200 = 1 310 s, 8 plays, 7 streams
    assert r["minutes"] == pytest.approx(1310 / 60)
    assert (r["plays"], r["streams"], r["active_days"], r["distinct_tracks"], r["distinct_artists"]) == (
        8, 7, 5, 3, 3)
    assert [a["artist_name"] for a in r["top_artists"]] == ["Artist x1", "Artist x2", "Artist x3"]  # 800, 500, 10 s
    assert [t["track_name"] for t in r["top_tracks"]] == ["Track s1", "Track s3", "Track s4"]
    assert [(g["genre"], round(g["share"], 4)) for g in r["top_genres"]] == [
        ("rock", round(800 / 1310, 4)), ("jazz", round(500 / 1310, 4)), ("pop", round(10 / 1310, 4))]


def test_biggest_day_streak_peaks(con) -> None:
    r = year_in_review(con, "ana", 2024)
    assert r["biggest_day"] == {"date": date(2024, 3, 10), "minutes": pytest.approx(610 / 60), "plays": 4}
    assert r["longest_streak"] == {"days": 3, "start": date(2024, 3, 8), "end": date(2024, 3, 10)}
    assert r["peak_hour"] == 11  # five plays start at 11:5x, three at 12:xx
    assert r["peak_weekday"] == "Sunday"  # 2024-03-10: four plays


def test_discovery_and_previous_year(con) -> None:
    r = year_in_review(con, "ana", 2024)
    # x1 was first heard in 2023 (s2); x2 and x3 are new in March 2024: 3 + 1 of March's 8 plays
    assert r["discovery"] == {"new_artists": 2, "new_tracks": 3, "artist_discovery_rate": pytest.approx(4 / 8),
                              "first_year": False}
    p = r["previous_year"]
    assert p["year"] == 2023 and p["minutes"] == pytest.approx(200 / 60)
    assert p["minutes_change"] == pytest.approx(1310 / 200 - 1)
    assert (p["top_artist"], p["top_artists_kept"], p["distinct_artists"]) == ("Artist x1", ["Artist x1"], 1)


def test_what_wrapped_never_shows(con) -> None:
    b = year_in_review(con, "ana", 2024)["beyond_wrapped"]
    assert (b["skips"], b["skip_rate"]) == (1, 1 / 8)
    assert b["mean_completion"] == pytest.approx((0.5 + 6 * 1 + 0.05) / 8)  # s3 at half, s4 at 10 s of 200
    assert (b["full_listen_rate"], b["completion_known"], b["skip_known"]) == (6 / 8, 8, 8)
    assert b["sessions"]["sessions"] == 5 and b["sessions"]["median_plays"] == 1
    # 2024's episodes only: 30 + 30 + 10 minutes, Deep Talk listened to longest
    assert b["podcasts"] == {"minutes": pytest.approx(70.0), "plays": 3, "shows": 2, "top_show": "Deep Talk"}


def test_personality_from_the_segment(con) -> None:
    p = year_in_review(con, "ana", 2024)["personality"]
    assert (p["name"], p["size"]) == ("Night owls", 1)
    assert [t["feature"] for t in p["traits"]] == ["skip_rate", "night_share", "log_plays"]  # by |z|


def test_unknowns_stay_unknown(con) -> None:
    r = year_in_review(con, "cy", 2022)
    assert r["top_genres"] == []  # cy's one track has no genre: no genre figure at all, not 0 %
    assert r["previous_year"] is None and r["personality"] is None
    assert r["discovery"]["first_year"] is True
    b = r["beyond_wrapped"]
    assert b["podcasts"]["top_show"] is None
    # cy's plays come from account data and the Web API, neither of which records skips: unknown, not "never"
    assert (b["skips"], b["skip_rate"], b["skip_known"]) == (None, None, 0)
    # the API play's completion is its duration by construction: only the account play (100 of 200 s) counts
    assert (b["mean_completion"], b["completion_known"]) == (0.5, 1)
    no_seg = duckdb.connect(":memory:")
    build_pair(no_seg, segments=False)
    assert year_in_review(no_seg, "ana", 2024)["personality"] is None


def test_a_year_without_music(con) -> None:
    assert years(con, ANA) == [2023, 2024]
    with pytest.raises(InputError, match="ana played no music in 2021") as exc:
        year_in_review(con, "ana", 2021)
    assert exc.value.hint == "years with listening: 2023, 2024"
