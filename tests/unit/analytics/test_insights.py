"""Each metric against values worked out by hand from the rows in conftest.py."""

from __future__ import annotations

import math
from datetime import date

import duckdb
import pytest

from tunelake.analytics import insights as I
from tunelake.errors import InputError, TunelakeError

from .conftest import ALICE, BOB, build_tiny, create_tables

A = I.Filters(user_keys=(ALICE,))
JAN = I.Filters(start=date(2024, 1, 1), end=date(2024, 1, 31), user_keys=(ALICE,))


def test_entropy_bits_does_not_depend_on_the_order_of_the_counts() -> None:
    # A GROUP BY hands the counts over in any order; with a plain sum these two orders differed in the last bit,
    # which made the listener-viewer test of `diversity` flaky.
    counts = [404, 108, 49, 250, 15, 458, 428]
    assert I.entropy_bits(counts) == I.entropy_bits(list(reversed(counts)))


def test_entropy_bits_hand_cases() -> None:
    assert I.entropy_bits([4, 2, 1, 1]) == pytest.approx(1.75)  # ½·1 + ¼·2 + 2·⅛·3
    assert I.entropy_bits([5, 5]) == pytest.approx(1.0)
    assert I.entropy_bits([7]) == 0.0
    assert I.entropy_bits([]) == 0.0
    assert I.entropy_bits([1, 0, 1]) == pytest.approx(1.0)


def test_kpis(tiny_con) -> None:
    k = I.kpis(tiny_con, I.ALL)
    assert (k["listeners"], k["plays"], k["streams"], k["skips"]) == (2, 9, 9, 1)
    assert k["hours"] == pytest.approx(1540 / 3600)
    assert (k["distinct_tracks"], k["distinct_artists"]) == (5, 4)
    a = I.kpis(tiny_con, A)
    assert a["skip_rate"] == pytest.approx(1 / 8)
    assert a["mean_completion"] == pytest.approx(6.75 / 8)  # 1, .25, 1, 1, 1, .5, 1, 1
    assert (a["first_date"], a["last_date"]) == (date(2024, 1, 1), date(2024, 2, 1))


def test_empty_filter_gives_none_rates(tiny_con) -> None:
    k = I.kpis(tiny_con, I.Filters(start=date(2030, 1, 1)))
    assert k["plays"] == 0 and k["skip_rate"] is None and k["mean_completion"] is None


def test_listening_over_time(tiny_con) -> None:
    m = I.listening_over_time(tiny_con, A, "month")
    assert list(m["period"].dt.date) == [date(2024, 1, 1), date(2024, 2, 1)]
    assert list(m["plays"]) == [6, 2]
    assert m["hours"].tolist() == pytest.approx([900 / 3600, 440 / 3600])
    d = I.listening_over_time(tiny_con, I.ALL, "day")
    assert list(d["plays"]) == [4, 1, 1, 1, 2] and list(d["listeners"]) == [2, 1, 1, 1, 1]
    with pytest.raises(InputError):
        I.listening_over_time(tiny_con, A, "year")


def test_top_lists(tiny_con) -> None:
    art = I.top_artists(tiny_con, A, 10)
    assert list(art["artist_id"]) == ["a1", "a2", "a4", "a3"]  # 600 s, 400 s, 240 s, 100 s
    assert list(art["plays"]) == [4, 2, 1, 1] and list(art["rank"]) == [1, 2, 3, 4]
    assert art["artist_name"][0] == "Artist 1"
    tr = I.top_tracks(tiny_con, I.ALL, 2)
    assert list(tr["track_id"]) == ["t3", "t1"]  # t3: 3 × 200 s = 600 s; t1: 540 s
    assert list(tr["listeners"]) == [2, 1] and tr["track_name"][0] == "Track 3"
    al = I.top_albums(tiny_con, A, 1)
    assert al["album_id"][0] == "al1" and al["release_year"][0] == 1995
    g = I.top_genres(tiny_con, A, 5)
    assert list(g["genre"]) == ["rock", "jazz", "pop"]  # 840 s, 400 s, 100 s
    assert g["share"].tolist() == pytest.approx([840 / 1340, 400 / 1340, 100 / 1340])


def test_top_tracks_mid_month_window_reads_fact_play(tiny_con) -> None:
    tr = I.top_tracks(tiny_con, I.Filters(start=date(2024, 1, 2), end=date(2024, 1, 4)), 5)
    assert list(tr["track_id"]) == ["t1"] and list(tr["plays"]) == [2]
    assert I.top_tracks(tiny_con, JAN, 10)["plays"].sum() == 6  # month-aligned: the aggregate


def test_heatmap(tiny_con) -> None:
    h = I.hour_weekday_heatmap(tiny_con, I.ALL)
    assert len(h) == 7 * 24 and h["plays"].sum() == 9
    cell = h[(h.weekday == 1) & (h.hour == 11)]  # 2024-01-01 is a Monday; alice and bob both start at 11:56:40
    assert int(cell["plays"].iloc[0]) == 2
    assert int(h[(h.weekday == 1) & (h.hour == 9)]["plays"].iloc[0]) == 1  # 09:57 start
    thu = h[h.weekday == 4].set_index("hour")["plays"]  # Thu 1 Feb: starts 08:56:40 and 09:00:00
    assert (thu[8], thu[9], thu.sum()) == (1, 1, 2)


def test_sessions(tiny_con) -> None:
    s = I.sessions(tiny_con, A)
    assert len(s) == 6 and list(s["plays"]) == [2, 1, 1, 1, 1, 2]
    assert s["duration_min"].iloc[0] == pytest.approx(6.0)  # 09:57:00 → 10:03:00
    assert s["duration_min"].iloc[5] == pytest.approx(7 + 20 / 60)  # 08:56:40 → 09:04:00
    st = I.session_stats(tiny_con, A)
    assert st["sessions"] == 6 and st["mean_plays"] == pytest.approx(8 / 6)
    assert st["longest_minutes"] == pytest.approx(7 + 20 / 60)
    assert st["sessions_per_active_day"] == pytest.approx(6 / 5)  # 5 active days


def test_streaks(tiny_con) -> None:
    s = I.streaks(tiny_con, A)
    assert list(s["days"]) == [3, 1, 1]
    assert (s["start"].iloc[0].date(), s["end"].iloc[0].date()) == (date(2024, 1, 1), date(2024, 1, 3))
    both = I.streaks(tiny_con, I.ALL)
    assert sorted(both[both.user_key == BOB]["days"]) == [1]


def test_skip_completion(tiny_con) -> None:
    s = I.skip_completion(tiny_con, A)
    assert list(s["plays"]) == [6, 2] and list(s["skips"]) == [1, 0]
    assert s["skip_rate"].tolist() == pytest.approx([1 / 6, 0.0])
    assert s["mean_completion"].tolist() == pytest.approx([4.75 / 6, 1.0])
    assert s["full_listen_rate"].tolist() == pytest.approx([4 / 6, 1.0])


def test_discovery_rate(tiny_con) -> None:
    d = I.discovery_rate(tiny_con, A)
    assert list(d["plays"]) == [6, 2]
    assert d["artist_discovery_rate"].tolist() == pytest.approx([1.0, 0.5])  # Feb: a2 known, a4 new
    assert d["track_discovery_rate"].tolist() == pytest.approx([1.0, 0.5])
    assert list(d["new_artists"]) == [3, 1] and list(d["new_tracks"]) == [4, 1]
    feb = I.discovery_rate(tiny_con, I.Filters(start=date(2024, 2, 1), user_keys=(ALICE,)))
    assert feb["artist_discovery_rate"].tolist() == pytest.approx([0.5])  # history before the window still counts


def test_diversity(tiny_con) -> None:
    d = I.diversity(tiny_con, A)
    assert d["artist_entropy_bits"] == pytest.approx(1.75)  # artists 4, 2, 1, 1 plays
    genre = -(5 / 8 * math.log2(5 / 8) + 2 / 8 * math.log2(2 / 8) + 1 / 8 * math.log2(1 / 8))  # rock 5, jazz 2, pop 1
    assert d["genre_entropy_bits"] == pytest.approx(genre)
    assert (d["artists"], d["genres"]) == (4, 3)
    assert I.diversity(tiny_con, I.Filters(user_keys=(BOB,)))["artist_entropy_bits"] == 0.0


def test_mainstreamness(tiny_con) -> None:
    m = I.mainstreamness(tiny_con, A)
    assert m["mean_popularity"] == pytest.approx((3 * 80 + 60 + 2 * 40 + 20) / 7)  # t5 has no popularity
    assert m["coverage"] == pytest.approx(7 / 8) and m["plays_with_popularity"] == 7


def test_eras(tiny_con) -> None:
    e = I.eras(tiny_con, A)
    assert list(e["era"]) == [1970, 1990, 2000] and list(e["plays"]) == [2, 4, 1]
    assert e["share"].tolist() == pytest.approx([2 / 7, 4 / 7, 1 / 7])
    assert list(I.eras(tiny_con, A, by="year")["era"]) == [1972, 1995, 2001]


def test_platforms(tiny_con) -> None:
    p = I.platforms(tiny_con, I.ALL)
    assert list(p["platform"]) == ["android", "ios", "web"] and list(p["plays"]) == [5, 3, 1]
    assert p["share"].sum() == pytest.approx(1.0)


def test_audio_profile(tiny_con) -> None:
    a = I.audio_profile(tiny_con, A)
    assert a["energy"] == pytest.approx((3 * 0.8 + 2 * 0.2) / 5)  # only t1 and t3 have features
    assert a["coverage"] == pytest.approx(5 / 8) and a["plays_with_features"] == 5
    assert a["tempo"] is None


def test_date_window(tiny_con) -> None:
    assert I.kpis(tiny_con, JAN)["plays"] == 6
    assert I.kpis(tiny_con, I.Filters(end=date(2024, 1, 1)))["plays"] == 4


def test_segment_filter(tiny_con) -> None:
    with pytest.raises(TunelakeError, match="segment"):
        I.kpis(tiny_con, I.Filters(segment=0))
    con = duckdb.connect(":memory:")
    build_tiny(con)
    create_tables(con, ["user_segment"])
    con.execute("INSERT INTO user_segment (user_key, segment, segment_name, run_id) VALUES (2, 1, 'Jazz fans', 'r')")
    assert I.kpis(con, I.Filters(segment=1))["plays"] == 1
    assert I.wrapped(con, "bob")["segment"] == {"segment": 1, "name": "Jazz fans"}
    assert I.users(con).set_index("handle").loc["bob", "segment_name"] == "Jazz fans"


def test_period_range() -> None:
    assert I.period_range("2024") == (date(2024, 1, 1), date(2024, 12, 31))
    assert I.period_range("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert I.period_range("2024-Q2") == (date(2024, 4, 1), date(2024, 6, 30))
    assert I.period_range(None) == (None, None)
    with pytest.raises(InputError):
        I.period_range("last year")


def test_wrapped(tiny_con) -> None:
    w = I.wrapped(tiny_con, "alice", "2024")
    assert w["handle"] == "alice" and w["minutes"] == round(1340 / 60) and w["plays"] == 8
    assert w["top_artists"][0]["artist_name"] == "Artist 1"
    assert w["longest_streak"] == {"days": 3, "start": date(2024, 1, 1), "end": date(2024, 1, 3)}
    assert w["top_month"]["month"] == date(2024, 1, 1) and w["peak_weekday"] == "Monday"
    assert w["top_decade"] == 1990 and w["top_platform"] == "android" and w["new_artists"] == 4
    with pytest.raises(InputError, match="unknown user"):
        I.wrapped(tiny_con, "carol")
    with pytest.raises(InputError, match="no plays"):
        I.wrapped(tiny_con, "alice", "2023")
