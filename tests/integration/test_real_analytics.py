"""Analytics on real listeners: every export in ../shared/data/real imported into one workspace with the
TidyTuesday catalogue, then the whole pipeline (`tunelake run`). Runs in CI (the files are small; about a minute).

What must hold on real data, whose histories end anywhere between 2019 and 2026:

* the recommender evaluation covers every listener with enough history — counted here independently, in SQL,
  from fact_play — each on their own clock, and with 4 listeners it keeps popularity as the default and says why;
* segmentation never leaves a single-listener segment unmentioned;
* no figure is made from no data: the report and `tunelake insights` show "–" / unknown instead of 0.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelake.cli import app
from tunelake.pipeline.runner import run
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import open_workspace

CATALOGUE = ("Vullkano__BDDA", "spotify_songs.parquet")


def listener_dirs(real: Path) -> dict[str, Path]:
    """Every folder of real/ holding a listening history, by a handle made from its owner's name."""
    out = {}
    for d in sorted(p for p in real.iterdir() if p.is_dir()):
        if any(d.glob("Streaming*History*.json")) or any(d.glob("endsong*.json")):
            out[d.name.split("__")[0].lower()] = d
    return out


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, real_dir: Path):
    ws = open_workspace(tmp_path_factory.mktemp("real-analytics"))
    dirs = listener_dirs(real_dir)
    info = run(ws, jobs=[(h, [str(d)]) for h, d in dirs.items()], catalog=real_dir.joinpath(*CATALOGUE))
    return ws, info, dirs


def test_every_real_listener_is_imported(real_run) -> None:
    ws, info, dirs = real_run
    assert len(dirs) == 4  # Efrrowini, CandidlyRed, hobbies-w-erin, TimothyMwiti (SOURCES.md)
    con = open_warehouse(ws)
    handles = {r[0] for r in con.execute("SELECT DISTINCT u.handle FROM fact_play JOIN dim_user u USING (user_key)"
                                         ).fetchall()}
    assert handles == set(dirs)
    assert info.status == "ok", [(s.step, s.status) for s in info.steps]


def evaluable(con, weeks: int = 4, min_plays: int = 20) -> set[str]:
    """Listeners with ≥ ``min_plays`` plays before their own last ``weeks`` weeks and, in them, a first play of a
    track known before (catalogued, or played by anyone before their own cut-off) — the rule of
    analytics/split.py and evaluate.py, written again in SQL."""
    return {r[0] for r in con.execute(f"""
        WITH p AS (SELECT f.user_key, f.track_id, f.started_at,
                          max(f.started_at) OVER (PARTITION BY f.user_key) - INTERVAL {7 * weeks} DAY AS test_start
                   FROM fact_play f WHERE f.track_id IN (SELECT track_id FROM dim_track)),
             before AS (SELECT user_key, track_id FROM p WHERE started_at <= test_start),
             known AS (SELECT track_id FROM dim_track WHERE in_catalog UNION SELECT track_id FROM before),
             n AS (SELECT user_key, count(*) AS plays FROM before GROUP BY 1),
             new AS (SELECT DISTINCT user_key FROM p WHERE started_at > test_start
                     AND track_id IN (SELECT track_id FROM known)
                     AND (user_key, track_id) NOT IN (SELECT user_key, track_id FROM before))
        SELECT u.handle FROM new JOIN n USING (user_key) JOIN dim_user u USING (user_key)
        WHERE n.plays >= {min_plays}""").fetchall()}


def test_evaluation_covers_every_listener_with_enough_history(real_run) -> None:
    ws, info, _ = real_run
    con = open_warehouse(ws)
    expected = evaluable(con)
    assert len(expected) == 4  # every real listener has 20+ plays and some first plays in their last 4 weeks
    ev = con.execute("SELECT * FROM rec_evaluation").df().set_index("method")
    assert (ev["users"] == len(expected)).all()
    # each on their own clock: the test periods start years apart (2019 … 2026), not at one dataset-wide date
    assert ev["test_start_min"].iloc[0].year == 2019 and ev["test_start_max"].iloc[0].year == 2026
    # four listeners cannot make a method the default: popularity stays, and the table says why
    assert bool(ev.loc["popularity", "is_default"]) and ev["is_default"].sum() == 1
    assert "only 4 listener(s) evaluated" in ev.loc["popularity", "decision"]
    for _, r in ev.iterrows():
        assert r["ndcg_low"] <= r["ndcg_at_k"] <= r["ndcg_high"]
    rec = info.step("analytics").details["recommendations"]
    assert rec["users_evaluated"] == 4 and rec["best_method"] == "popularity"


def test_segments_do_not_hide_a_single_listener(real_run) -> None:
    ws, info, _ = real_run
    con = open_warehouse(ws)
    sizes = con.execute("SELECT segment, count(*) FROM user_segment GROUP BY 1").fetchall()
    assert sum(c for _, c in sizes) == 4
    seg = info.step("analytics").details["segments"]
    singles = [s for s, c in sizes if c == 1]
    assert seg["singletons"] == singles
    for s in singles:  # a one-listener segment is only ever kept when every k leaves one, and then it is said
        assert f"segment {s} " in seg["summary"] and "single listener" in seg["summary"]
    sel = con.execute("SELECT k FROM segment_selection").fetchall()
    assert {k for (k,) in sel} == {2, 3}  # k can be at most n − 1 = 3


def test_no_figure_from_no_data(real_run) -> None:
    ws, _, dirs = real_run
    html = (ws.root / "report.html").read_text()
    assert "nan" not in re.sub(r"<[^>]+>", " ", html).lower().split()
    assert "over 4 listeners" in html
    # account-data listeners' plays carry no track duration where the catalogue does not know the track;
    # a genre the catalogue does not know is unknown, and `insights` says so rather than printing 0.00 bits
    con = open_warehouse(ws)
    no_genre = con.execute("""SELECT u.handle FROM dim_user u WHERE NOT EXISTS (
                                SELECT 1 FROM fact_play f JOIN dim_track t USING (track_id)
                                WHERE f.user_key = u.user_key AND t.primary_genre IS NOT NULL)""").fetchall()
    con.close()
    runner = CliRunner()
    for handle in sorted(dirs):
        res = runner.invoke(app, ["-w", str(ws.root), "insights", "--user", handle])
        assert res.exit_code == 0, res.output
        line = next(ln for ln in res.output.splitlines() if "Diversity" in ln)
        if (handle,) in no_genre:
            assert "– (unknown) over genres" in line
        else:
            assert re.search(r"\d\.\d\d bits over genres", line)


def test_one_listener_alone(tmp_path: Path, real_dir: Path) -> None:
    """One real export and no catalogue: nothing can be evaluated against other listeners' taste and no track
    duration is known; the report must say so instead of printing NDCG 1.000 and "covered –"."""
    ws = open_workspace(tmp_path / "one")
    info = run(ws, jobs=[("candidlyred", [str(real_dir / "CandidlyRed__spotify")])])
    assert info.status == "ok"
    html = (ws.root / "report.html").read_text()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "1.000, 1.0× the popularity baseline" not in text
    assert "covered – of its track" not in text
    con = open_warehouse(ws)
    ev = con.execute("SELECT method, users, is_default, decision FROM rec_evaluation").df().set_index("method")
    assert bool(ev.loc["popularity", "is_default"])
    # alone and without a catalogue, every track first played in the test period is one nobody knew before it
    assert (ev["users"] == 0).all() and "no listener could be evaluated" in ev.loc["popularity", "decision"]
    assert "No recommender could be evaluated" in text and "NDCG@10 = " not in text
    con.close()
    runner = CliRunner()
    res = runner.invoke(app, ["-w", str(ws.root), "recommend", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert all(r["ndcg_at_k"] is None and r["ndcg_low"] is None for r in rows)  # no number where none exists
    res = runner.invoke(app, ["-w", str(ws.root), "recommend"])
    assert res.exit_code == 0 and "–" in res.output and "0.0 " not in res.output
    con = open_warehouse(ws)
    completion = con.execute("SELECT avg(completion) FROM fact_play").fetchone()[0]
    if completion is None:
        assert "is unknown (no track durations)" in text
