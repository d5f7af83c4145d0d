"""Year in review and compare on the real exports of ../shared/data/real (all four listeners in one workspace, with
the TidyTuesday catalogue): every listener-year's figures against direct queries and plain-Python computations on
fact_play, unknowns left unknown where an export does not record them, and a comparison of real strangers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tunelake.analytics.compare import compare_with_consent
from tunelake.analytics.consent import set_consent
from tunelake.analytics.wrapped import year_in_review, years
from tunelake.curate.catalog import import_catalog
from tunelake.curate.ingest import import_paths
from tunelake.pipeline import build
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import open_workspace

EXPORTS = {  # handle: (folder, records skips)
    "efrrowini": ("Efrrowini__spotify-music-analysis", True),
    "candidlyred": ("CandidlyRed__spotify", True),
    "erin": ("hobbies-w-erin__Spotify-Account-Data", False),
    "timothy": ("TimothyMwiti__SpotifyDataAnalysis", False),
}


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, real_dir: Any) -> Any:
    ws = open_workspace(tmp_path_factory.mktemp("real-social"))
    import_catalog(ws, real_dir / "Vullkano__BDDA" / "spotify_songs.parquet")
    for handle, (folder, _) in EXPORTS.items():
        import_paths(ws, [str(real_dir / folder)], handle)
    build(ws)
    con = open_warehouse(ws)
    yield ws, con
    con.close()


def _longest_run(days: list[date]) -> int:
    best = run = 0
    prev = None
    for d in sorted(set(days)):
        run = run + 1 if prev is not None and d - prev == timedelta(days=1) else 1
        best, prev = max(best, run), d
    return best


def test_every_listener_year(real: Any) -> None:
    _, con = real
    reviewed = 0
    for handle, (_, has_skips) in EXPORTS.items():
        key = con.execute("SELECT user_key FROM dim_user WHERE handle = ?", [handle]).fetchone()[0]
        plays = con.execute("SELECT date_key, ms_played, is_skip, source FROM fact_play WHERE user_key = ?",
                            [key]).fetchall()
        by_year: dict[int, list[tuple]] = {}
        for p in plays:
            by_year.setdefault(p[0] // 10000, []).append(p)
        assert years(con, key) == sorted(by_year)
        for year, rows in by_year.items():
            r = year_in_review(con, handle, year)
            reviewed += 1
            assert r["plays"] == len(rows) and r["minutes"] == pytest.approx(sum(p[1] for p in rows) / 60000)
            per_day: dict[int, int] = {}
            for p in rows:
                per_day[p[0]] = per_day.get(p[0], 0) + p[1]
            top_day = min(per_day, key=lambda d: (-per_day[d], d))
            assert r["biggest_day"]["date"] == date(top_day // 10000, top_day // 100 % 100, top_day % 100)
            assert r["biggest_day"]["minutes"] == pytest.approx(per_day[top_day] / 60000)
            days = [date(d // 10000, d // 100 % 100, d % 100) for d in per_day]
            assert r["longest_streak"]["days"] == _longest_run(days) and r["active_days"] == len(per_day)
            b = r["beyond_wrapped"]
            if has_skips:  # extended history records skips
                assert b["skips"] == sum(p[2] for p in rows) and b["skip_rate"] == pytest.approx(b["skips"] / len(rows))
            else:  # account data does not: unknown, not 0 %
                assert (b["skips"], b["skip_rate"], b["skip_known"]) == (None, None, 0)
            shares = [g["share"] for g in r["top_genres"]]
            assert all(0 < s <= 1 for s in shares) and sum(shares) <= 1 + 1e-9
            assert (r["previous_year"] is None) == (year - 1 not in by_year)
            assert r["personality"] is None  # no segmentation ran in this workspace
    assert reviewed == 11  # efrrowini 2022–2026 (5), candidlyred 2021–22 (2), erin 2023–24 (2), timothy 2018–19 (2)


def test_real_strangers_compare(real: Any) -> None:
    ws, con = real
    for handle in EXPORTS:
        set_consent(ws, handle)
    r = compare_with_consent(ws.lake, con, "erin", "timothy", half_life_days=None, n=10_000)
    assert r["shared_artist_count"] == len(r["shared_artists"]) > 100
    assert sum(x["part"] for x in r["shared_artists"]) == pytest.approx(r["cosine"])
    assert 0 <= r["score"] < 15 and r["label"] == "different worlds"  # real strangers share little
    assert r["genre_cosine"] is not None and r["genre_cosine"] > r["cosine"]
    key = r["a"]["user_key"]
    mine = {t for (t,) in con.execute("SELECT DISTINCT track_id FROM fact_play WHERE user_key = ?", [key]).fetchall()}
    assert r["for_a"]["tracks"] and not {t["track_id"] for t in r["for_a"]["tracks"]} & mine
