"""Offline evaluation of the recommenders: per-listener time split, parameters chosen on validation only, test
metrics with bootstrap intervals over listeners, and a default that must beat popularity with confidence.

Protocol (split.py cuts the periods, offline_metrics.py defines the metrics):

1. each listener's history is cut into fit | validation | test on the listener's own clock (on a seeded sample of
   ``spec.listeners`` listeners when there are more);
2. every method's hyper-parameters (``GRIDS``) are fitted on *fit* and scored on *validation* by mean NDCG@k; the
   best set wins (the first, i.e. the documented default, when no listener can be validated);
3. each method is refitted with its chosen set on *fit + validation* and recommends ``k`` tracks the listener has
   not played to every listener evaluable in *test*; a candidate track must be known when the model is fitted
   (in a catalogue file, or played by someone in the fitting data) — a track known only from the plays being
   predicted would leak the answer (one listener alone would score NDCG 1.0), so such tracks are neither offered
   nor counted as relevant, and a listener with no known track among their first plays is not evaluated;
4. test metrics are means over those listeners with 95 % bootstrap intervals; ``delta_*`` is the paired
   difference in NDCG@k against popularity;
5. a method becomes the default only when at least ``min_listeners`` listeners were evaluated and its
   ``delta_low`` (the interval's lower end) is above zero — the best such method by NDCG@k; otherwise popularity
   stays the default and ``decision`` says why.

Caveat: the segment recommender uses segments the caller computed from the whole history (membership only, no
test item), so its behaviour features see a little of the test period.
"""

from __future__ import annotations

import json
import os
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from tunelake.analytics.offline_metrics import (
    bootstrap_ci,
    coverage_novelty,
    intra_list_diversity,
    per_listener,
    resamples,
)
from tunelake.analytics.recommend import METHODS, Interactions, interactions_from_counts, load_tracks, make_recommender
from tunelake.analytics.split import (
    TEST,
    VALIDATION,
    SplitSpec,
    assign_parts,
    counts,
    load_plays,
    relevant_sets,
    sample_listeners,
)
from tunelake.errors import InputError

# Hyper-parameters tried on validation; the first set of each method is its documented default.
GRIDS: dict[str, list[dict[str, Any]]] = {
    "popularity": [{}],
    "segment": [{"pop_weight": w} for w in (1e-3, 0.1, 0.5)],
    "content": [{"pop_floor": f, "audio_weight": a} for f in (0.1, 1.0) for a in (1.0, 0.0)],
    "als": [{"factors": f, "regularization": r, "alpha": a}
            for f in (16, 32) for r in (1.0, 0.1, 10.0) for a in (1.0, 5.0, 20.0)],
}
MIN_LISTENERS = 5  # a bootstrap over fewer listeners says nothing; popularity stays the default below it


# Batches of listeners scored at once: every method's scoring and top-n are NumPy/BLAS calls that release the GIL.
_THREADS = os.cpu_count() or 1


def ranking_metrics(recommended: np.ndarray, relevant: dict[int, set[int]], rows: np.ndarray,
                    k: int) -> dict[str, float]:
    """Mean precision@k, recall@k, NDCG@k and MAP@k over ``rows``."""
    m = per_listener(recommended, relevant, rows, k)
    return {"precision_at_k": float(m["precision"].mean()), "recall_at_k": float(m["recall"].mean()),
            "ndcg_at_k": float(m["ndcg"].mean()), "map_at_k": float(m["ap"].mean())}


def _known(relevant: dict[int, set[int]], data: Interactions) -> dict[int, set[int]]:
    """Relevant items limited to the candidates (tracks no model could know are not scored: the usual removal of
    cold-start items); a listener left with none is not evaluated."""
    assert data.candidates is not None
    out = {r: {i for i in items if data.candidates[i]} for r, items in relevant.items()}
    return {r: items for r, items in out.items() if items}


def _fit(method: str, params: dict[str, Any], data: Interactions) -> Any:
    return make_recommender(method, **params).fit(data)


def _choose(method: str, grid: list[dict[str, Any]], data: Interactions, relevant: dict[int, set[int]],
            k: int) -> tuple[dict[str, Any], float | None]:
    """The parameter set with the best validation NDCG@k (first wins ties), and that NDCG."""
    rows = np.array(sorted(relevant), dtype=int)
    if len(grid) == 1 or len(rows) == 0:
        return grid[0], None
    best: tuple[float, dict[str, Any]] | None = None
    for params in grid:
        recs = _fit(method, params, data).recommend(rows, k, reasons=False, threads=_THREADS)
        ndcg = float(per_listener(recs.items, relevant, rows, k)["ndcg"].mean())
        if best is None or ndcg > best[0]:
            best = (ndcg, params)
    assert best is not None
    return best[1], best[0]


def _fmt(lo: float | None, hi: float | None) -> str:
    return f"[{lo:+.3f}, {hi:+.3f}]"


def evaluate(con: duckdb.DuckDBPyConnection, segments: pd.DataFrame | None = None, k: int = 10,
             spec: SplitSpec | None = None, methods: tuple[str, ...] = METHODS,
             grids: dict[str, list[dict[str, Any]]] | None = None, rounds: int = 1000, seed: int = 0,
             min_listeners: int = MIN_LISTENERS) -> pd.DataFrame:
    """One row per method (see the module docstring and the ``rec_evaluation`` table spec for the columns).

    ``segments`` (user_key, segment, segment_name) feeds the segment recommender; the method is left out
    without it."""
    spec = spec or SplitSpec()
    grids = {**GRIDS, **(grids or {})}
    if "popularity" not in methods:
        raise InputError("the evaluation needs the popularity baseline", field="methods",
                         hint="include 'popularity'")
    if rounds < 100:
        raise InputError(f"{rounds} bootstrap rounds", field="eval_bootstrap", hint="use at least 100")
    parts = assign_parts(load_plays(con, sample_listeners(con, spec.listeners, spec.seed)), spec)
    tracks = load_tracks(con)
    users = np.array(sorted(parts["user_key"].unique()), dtype=np.int64)
    if len(users) == 0:
        raise InputError("no plays to evaluate recommendations on", field="fact_play",
                         hint="import listening history and run `tunelake build`")
    fit_val = interactions_from_counts(counts(parts, VALIDATION), tracks, segments, users)
    fit_test = interactions_from_counts(counts(parts, TEST), tracks, segments, users)
    catalogued = tracks["in_catalog"].to_numpy(bool)
    for fitted in (fit_val, fit_test):  # only tracks known at fitting time can be recommended (see Interactions)
        fitted.candidates = catalogued | (np.diff(fitted.plays.tocsc().indptr) > 0)
    col_of = pd.Series(np.arange(len(tracks)), index=tracks["track_id"])
    rel_val = _known(relevant_sets(parts, VALIDATION, col_of, fit_val.row_of, spec.min_train_plays), fit_val)
    rel_test = _known(relevant_sets(parts, TEST, col_of, fit_test.row_of, spec.min_train_plays), fit_test)
    rows = np.array(sorted(rel_test), dtype=int)
    idx = resamples(len(rows), rounds, seed)
    listeners = np.asarray((fit_test.plays > 0).sum(axis=0)).ravel()
    artist_of = tracks["artist_id"].fillna(tracks["artist_name"]).fillna("").astype(str).to_numpy()
    starts = parts.groupby("user_key")["test_start"].first()
    tested = starts[starts.index.isin(fit_test.user_keys[rows])] if len(rows) else starts.iloc[:0]

    results: dict[str, dict[str, Any]] = {}
    ndcgs: dict[str, np.ndarray] = {}
    for method in methods:
        if method == "segment" and segments is None:
            continue
        params, val_ndcg = _choose(method, grids[method], fit_val, rel_val, k)
        row: dict[str, Any] = {"method": method, "k": k, "params": json.dumps(params, sort_keys=True),
                               "val_ndcg": val_ndcg, "val_users": len(rel_val), "users": len(rows)}
        if len(rows):
            recs = _fit(method, params, fit_test).recommend(rows, k, reasons=False, threads=_THREADS)
            m = per_listener(recs.items, rel_test, rows, k)
            ndcgs[method] = m["ndcg"]
            for name, key in (("precision", "precision_at_k"), ("recall", "recall_at_k"), ("ndcg", "ndcg_at_k"),
                              ("ap", "map_at_k")):
                row[key] = float(m[name].mean())
            row["recall_low"], row["recall_high"] = bootstrap_ci(m["recall"], idx)
            row["ndcg_low"], row["ndcg_high"] = bootstrap_ci(m["ndcg"], idx)
            row["map_low"], row["map_high"] = bootstrap_ci(m["ap"], idx)
            row["coverage"], row["novelty"] = coverage_novelty(recs.items, listeners, len(users), len(tracks))
            div = intra_list_diversity(recs.items, artist_of)
            row["diversity"] = float(np.nanmean(div)) if np.isfinite(div).any() else None
        results[method] = row
    base = ndcgs.get("popularity")
    for method, row in results.items():
        if method != "popularity" and base is not None:
            diff = ndcgs[method] - base
            row["delta_ndcg"] = float(diff.mean())
            row["delta_low"], row["delta_high"] = bootstrap_ci(diff, idx)
    _decide(results, len(rows), min_listeners, k)
    df = pd.DataFrame(list(results.values()))
    df["test_start_min"] = tested.min().date() if len(tested) else None
    df["test_start_max"] = tested.max().date() if len(tested) else None
    df["split"] = spec.describe()
    return df.reindex(columns=list(COLUMNS))


COLUMNS = ("method", "k", "precision_at_k", "recall_at_k", "recall_low", "recall_high", "ndcg_at_k", "ndcg_low",
           "ndcg_high", "map_at_k", "map_low", "map_high", "coverage", "novelty", "diversity", "delta_ndcg",
           "delta_low", "delta_high", "params", "val_ndcg", "val_users", "users", "split", "test_start_min",
           "test_start_max", "is_default", "decision")


def _decide(results: dict[str, dict[str, Any]], n: int, min_listeners: int, k: int) -> None:
    """Set ``is_default`` and ``decision`` on every row (step 5 of the protocol)."""
    winners = [m for m, r in results.items() if m != "popularity" and n >= min_listeners
               and r.get("delta_low") is not None and r["delta_low"] > 0]
    best = max(winners, key=lambda m: (results[m]["ndcg_at_k"], m)) if winners else "popularity"
    for method, r in results.items():
        r["is_default"] = method == best
        if n == 0:
            r["decision"] = ("default: no listener could be evaluated (popularity stays)"
                             if method == "popularity" else "not evaluated: no listener could be evaluated")
        elif n < min_listeners:
            r["decision"] = (f"default: only {n} listener(s) evaluated, fewer than {min_listeners} needed to "
                             "replace popularity" if method == "popularity"
                             else f"not default: only {n} listener(s) evaluated")
        elif method == "popularity":
            r["decision"] = ("default: no method beats popularity with an interval above zero"
                             if best == "popularity" else f"baseline; {best} beats it")
        else:
            gap = f"ΔNDCG@{k} {r['delta_ndcg']:+.3f} {_fmt(r['delta_low'], r['delta_high'])} vs popularity"
            if method == best:
                r["decision"] = f"default: {gap}, over {n} listeners"
            elif method in winners:
                r["decision"] = f"not default: beats popularity ({gap}) but {best} has the higher NDCG@{k}"
            else:
                r["decision"] = f"not default: {gap} includes zero or is below it"
