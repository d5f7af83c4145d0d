"""The evaluation protocol on hand-made data: per-listener splits, relevant items, metrics, bootstrap intervals and
the rule that makes a method the default."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tunelake.analytics.evaluate import _decide, evaluate
from tunelake.analytics.offline_metrics import (
    bootstrap_ci,
    coverage_novelty,
    intra_list_diversity,
    per_listener,
    resamples,
)
from tunelake.analytics.split import FIT, TEST, VALIDATION, SplitSpec, assign_parts, counts, relevant_sets
from tunelake.errors import InputError


def plays_frame() -> pd.DataFrame:
    # listener 1 plays daily from 1 Jan to 31 Mar 2024; listener 2 stops on 15 Jan 2023 (a history that ends early)
    rows = [(1, f"t{d % 7}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=d)) for d in range(91)]
    rows += [(2, f"t{d % 3}", pd.Timestamp("2023-01-01") + pd.Timedelta(days=d)) for d in range(15)]
    return pd.DataFrame(rows, columns=["user_key", "track_id", "started_at"])


def test_weeks_split_is_on_each_listeners_own_clock() -> None:
    parts = assign_parts(plays_frame(), SplitSpec("weeks", test_weeks=1))
    one = parts[parts.user_key == 1]
    # last play 2024-03-31: test = after 24 Mar (25–31 Mar, 7 plays), validation = 18–24 Mar (7 plays)
    assert (one.part == TEST).sum() == 7 and (one.part == VALIDATION).sum() == 7 and (one.part == FIT).sum() == 77
    assert one.loc[one.part == TEST, "started_at"].min() == pd.Timestamp("2024-03-25")
    two = parts[parts.user_key == 2]
    # last play 2023-01-15: listener 2 gets a test period of their own, two years before listener 1's
    assert two.loc[two.part == TEST, "started_at"].min() == pd.Timestamp("2023-01-09")
    assert (two.part == TEST).sum() == 7 and (two.part == VALIDATION).sum() == 7 and (two.part == FIT).sum() == 1


def test_percent_split_counts_plays() -> None:
    parts = assign_parts(plays_frame(), SplitSpec("percent", test_percent=10))
    one, two = parts[parts.user_key == 1], parts[parts.user_key == 2]
    assert (one.part == TEST).sum() == 10 and (one.part == VALIDATION).sum() == 10  # ceil(91 × 10 %) = 10
    assert (two.part == TEST).sum() == 2 and (two.part == VALIDATION).sum() == 2  # ceil(15 × 10 %) = 2
    assert one.loc[one.part == TEST, "started_at"].min() == pd.Timestamp("2024-03-22")  # the last 10 days


@pytest.mark.parametrize("bad", [{"mode": "days"}, {"test_weeks": 0}, {"test_percent": 50},
                                 {"min_train_plays": 0}])
def test_bad_split_is_refused(bad: dict) -> None:
    with pytest.raises(InputError):
        SplitSpec(**bad)


def test_relevant_items_are_first_plays_and_need_history() -> None:
    df = pd.DataFrame({"user_key": [1, 1, 1, 1, 2, 2], "track_id": ["a", "b", "a", "c", "a", "b"],
                       "part": [FIT, FIT, TEST, TEST, FIT, TEST]})
    col_of = pd.Series([0, 1, 2], index=["a", "b", "c"])
    row_of = {1: 0, 2: 1}
    # listener 1 replays a (not relevant) and discovers c; listener 2 discovers b
    assert relevant_sets(df, TEST, col_of, row_of, min_train_plays=1) == {0: {2}, 1: {1}}
    # with 2 plays needed before the period, listener 2 (one play) is not evaluated
    assert relevant_sets(df, TEST, col_of, row_of, min_train_plays=2) == {0: {2}}
    fit = counts(df, TEST)
    assert sorted(map(tuple, fit[["user_key", "track_id", "plays"]].to_numpy().tolist())) == [
        (1, "a", 1), (1, "b", 1), (2, "a", 1)]


def test_per_listener_metrics_hand_case() -> None:
    recs = np.array([[5, 1, 7], [2, 3, -1]])
    rel = {0: {1, 9}, 1: {2}}
    m = per_listener(recs, rel, np.array([0, 1]), k=3)
    assert m["precision"] == pytest.approx([1 / 3, 1 / 3])
    assert m["recall"] == pytest.approx([1 / 2, 1.0])
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # hit at rank 2; the ideal list has both relevant on top
    assert m["ndcg"] == pytest.approx([ndcg0, 1.0])
    # AP@3: listener 0 has one hit at rank 2 (precision ½) over min(2, 3) = 2 relevant; listener 1 a hit at rank 1
    assert m["ap"] == pytest.approx([0.25, 1.0])


def test_intra_list_diversity_and_coverage() -> None:
    artist_of = np.array(["a", "a", "b", "c"])
    div = intra_list_diversity(np.array([[0, 1, 2], [2, 3, -1], [0, -1, -1]]), artist_of)
    # list 0: pairs (0,1) same artist, (0,2), (1,2) differ → 2/3; list 1: one pair, different → 1; list 2: no pair
    assert div[0] == pytest.approx(2 / 3) and div[1] == 1.0 and np.isnan(div[2])
    cov, nov = coverage_novelty(np.array([[0, 1], [1, -1]]), listeners=np.array([3, 1, 0, 0]), n_users=3,
                                n_tracks=4)
    assert cov == 0.5  # tracks 0 and 1 of 4
    assert nov == pytest.approx((-math.log2(4 / 4) - 2 * math.log2(2 / 4)) / 3)
    assert coverage_novelty(np.full((2, 2), -1), np.zeros(4), 3, 4) == (None, None)


def test_bootstrap_interval() -> None:
    idx = resamples(2, 4000, seed=1)
    assert bootstrap_ci(np.array([0.3, 0.3]), idx) == pytest.approx((0.3, 0.3))
    # two listeners scoring 0 and 1: a resample's mean is 0 (¼), ½ (½) or 1 (¼), so the 95 % interval is [0, 1]
    assert bootstrap_ci(np.array([0.0, 1.0]), idx) == (0.0, 1.0)
    # many listeners: close to the normal interval mean ± 1.96 σ/√n
    x = np.random.default_rng(3).normal(0.2, 0.1, 400)
    lo, hi = bootstrap_ci(x, resamples(400, 4000, seed=2))
    half = 1.96 * x.std() / math.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - half, abs=0.002) and hi == pytest.approx(x.mean() + half, abs=0.002)
    assert bootstrap_ci(np.array([]), resamples(0, 10)) == (None, None)


def _rows(**deltas: tuple[float, float, float]) -> dict[str, dict]:
    out = {"popularity": {"ndcg_at_k": 0.05}}
    for m, (ndcg, lo, hi) in deltas.items():
        out[m] = {"ndcg_at_k": ndcg, "delta_ndcg": ndcg - 0.05, "delta_low": lo, "delta_high": hi}
    return out


def test_default_needs_an_interval_above_zero() -> None:
    r = _rows(als=(0.30, 0.10, 0.40), content=(0.35, -0.01, 0.50), segment=(0.20, 0.02, 0.30))
    _decide(r, n=40, min_listeners=5, k=10)
    # content has the best mean but its interval includes zero; als is the best of those that beat popularity
    assert [m for m, v in r.items() if v["is_default"]] == ["als"]
    assert r["content"]["decision"].startswith("not default") and "includes zero" in r["content"]["decision"]
    assert r["segment"]["decision"].startswith("not default: beats popularity")
    r = _rows(als=(0.30, -0.02, 0.40))
    _decide(r, n=40, min_listeners=5, k=10)
    assert r["popularity"]["is_default"] and "no method beats popularity" in r["popularity"]["decision"]
    r = _rows(als=(0.30, 0.10, 0.40))
    _decide(r, n=4, min_listeners=5, k=10)  # too few listeners to replace the baseline, however good
    assert r["popularity"]["is_default"] and "only 4 listener(s)" in r["popularity"]["decision"]


def test_no_evaluable_listener_gives_no_figures(tiny_con) -> None:
    # the tiny warehouse: alice has 8 plays, bob 1 — neither has 20 plays before a test period
    ev = evaluate(tiny_con, rounds=200).set_index("method")
    assert (ev["users"] == 0).all() and ev["ndcg_at_k"].isna().all() and ev["recall_low"].isna().all()
    assert ev["is_default"].sum() == 1 and bool(ev.loc["popularity", "is_default"])
    assert "no listener could be evaluated" in ev.loc["popularity", "decision"]
    # a looser split evaluates alice alone: figures exist, but one listener never replaces popularity
    ev = evaluate(tiny_con, spec=SplitSpec("percent", test_percent=25, min_train_plays=2), rounds=200)
    ev = ev.set_index("method")
    assert (ev["users"] == 1).all() and ev["ndcg_at_k"].notna().all()
    assert bool(ev.loc["popularity", "is_default"])


def test_evaluation_on_a_synthetic_world(demo_workspace) -> None:
    from tunelake.analytics.evaluate import GRIDS
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    con = open_warehouse(open_workspace(demo_workspace))
    ev = con.execute("SELECT * FROM rec_evaluation").df().set_index("method")
    n_users = con.execute("SELECT count(DISTINCT user_key) FROM fact_play").fetchone()[0]
    assert 0 < ev["users"].iloc[0] <= n_users and (ev["users"] == ev["users"].iloc[0]).all()
    for m, r in ev.iterrows():
        assert r["ndcg_low"] <= r["ndcg_at_k"] <= r["ndcg_high"] and r["recall_low"] <= r["recall_at_k"]
        assert r["map_at_k"] <= r["ndcg_at_k"] + 1e-9 and 0 <= r["diversity"] <= 1
        assert json.loads(r["params"]) in GRIDS[m]
    assert ev["is_default"].sum() == 1
    default = ev.index[ev["is_default"]][0]
    assert default == "popularity" or ev.loc[default, "delta_low"] > 0
    # the recommendations table holds the default's lists
    assert set(con.execute("SELECT DISTINCT method FROM recommendations").df()["method"]) == {default}


def test_a_seeded_sample_of_listeners_bounds_the_evaluation(demo_workspace) -> None:
    from tunelake.analytics.split import load_plays, sample_listeners
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    con = open_warehouse(open_workspace(demo_workspace))
    users = [r[0] for r in con.execute("SELECT DISTINCT user_key FROM fact_play ORDER BY 1").fetchall()]
    assert len(users) > 4
    assert sample_listeners(con, 0) is None and sample_listeners(con, len(users)) is None  # everyone
    one = sample_listeners(con, 4, seed=0)
    assert len(set(one)) == 4 and set(one) <= set(users) and list(one) == sorted(one)
    assert list(sample_listeners(con, 4, seed=0)) == list(one)  # the same sample every run
    assert any(list(sample_listeners(con, 4, seed=s)) != list(one) for s in (1, 2, 3))
    plays = load_plays(con, one)
    assert set(plays["user_key"]) == set(one)
    whole = load_plays(con)
    pd.testing.assert_frame_equal(plays.reset_index(drop=True),
                                  whole[whole["user_key"].isin(one)].reset_index(drop=True))
    ev = evaluate(con, spec=SplitSpec(listeners=4), methods=("popularity",), rounds=100)
    assert 0 < int(ev["users"].iloc[0]) <= 4 and int(ev["val_users"].iloc[0]) <= 4
    assert ev["split"].iloc[0].endswith("; at most 4 listeners (seeded sample)")
    with pytest.raises(InputError):
        SplitSpec(listeners=-1)
