"""Offline evaluation of the recommenders on a time split.

Protocol (stated once, used everywhere):

* the holdout is the last ``holdout_days`` (28) local days with data in the warehouse; everything before is training;
* each recommender is fitted on training plays only and recommends ``k`` (10) tracks the user has not played in
  training;
* the *relevant* items of a user are the tracks the user plays for the first time in the holdout (tracks already
  played in training are excluded: recommending them would be scored as re-discovery);
* users are evaluated when they have training plays and at least one relevant item;
* precision@k = hits ÷ k; recall@k = hits ÷ |relevant|; NDCG@k with binary gains
  (Σ 1/log2(rank+1) over hits ÷ the ideal DCG for min(|relevant|, k) hits); all means over evaluated users;
* coverage = distinct recommended tracks ÷ tracks in dim_track; novelty = mean −log2((listeners + 1) ÷ (users + 1))
  of recommended tracks, with training listeners — higher means less obvious recommendations.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from tunelake.analytics.recommend import METHODS, Interactions, Recommender, load_interactions, make_recommender


def holdout_start(con: duckdb.DuckDBPyConnection, holdout_days: int = 28) -> date:
    last = con.execute("SELECT max(date) FROM agg_user_day").fetchone()[0]
    return last - timedelta(days=holdout_days - 1)


def relevant_items(con: duckdb.DuckDBPyConnection, train: Interactions, start: date) -> dict[int, set[int]]:
    """Row of ``train`` → column indices of tracks the user first played on or after ``start``."""
    dkey = start.year * 10000 + start.month * 100 + start.day
    df = con.execute(f"SELECT DISTINCT user_key, track_id FROM fact_play WHERE date_key >= {dkey}").df()
    col_of = pd.Series(np.arange(len(train.track_ids)), index=train.track_ids)
    df = df[df["track_id"].isin(col_of.index) & df["user_key"].isin(list(train.row_of))]
    out: dict[int, set[int]] = {}
    P = train.plays
    for user_key, grp in df.groupby("user_key"):
        row = train.row_of[int(user_key)]
        seen = set(P.indices[P.indptr[row]:P.indptr[row + 1]].tolist())
        rel = set(col_of[grp["track_id"]].tolist()) - seen
        if rel:
            out[row] = rel
    return out


def ranking_metrics(recommended: np.ndarray, relevant: dict[int, set[int]], rows: np.ndarray,
                    k: int) -> dict[str, float]:
    """Mean precision@k, recall@k and NDCG@k over ``rows`` (binary relevance; -1 entries are empty slots)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    p, r, n = [], [], []
    for row, items in zip(rows, recommended, strict=True):
        rel = relevant[int(row)]
        hits = np.array([int(i) in rel for i in items[:k]], dtype=float)
        dcg = float((hits * discounts[:len(hits)]).sum())
        idcg = float(discounts[:min(len(rel), k)].sum())
        p.append(hits.sum() / k)
        r.append(hits.sum() / len(rel))
        n.append(dcg / idcg if idcg else 0.0)
    return {"precision_at_k": float(np.mean(p)), "recall_at_k": float(np.mean(r)), "ndcg_at_k": float(np.mean(n))}


def evaluate(con: duckdb.DuckDBPyConnection, segments: pd.DataFrame | None = None, k: int = 10,
             holdout_days: int = 28, methods: tuple[str, ...] = METHODS,
             params: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per method with the metrics of the module docstring; ``is_default`` marks the best NDCG@k.

    ``segments`` (user_key, segment, segment_name) feeds the segment recommender; the method is skipped without
    it. Segment membership comes from the caller's segmentation of the whole history: it uses no holdout item,
    but the behaviour features behind it do see holdout-period listening."""
    start = holdout_start(con, holdout_days)
    train = load_interactions(con, before=start, segments=segments)
    relevant = relevant_items(con, train, start)
    rows = np.array(sorted(relevant), dtype=int)
    listeners = np.asarray((train.plays > 0).sum(axis=0)).ravel()
    n_users = len(train.user_keys)
    out = []
    for method in methods:
        if method == "segment" and segments is None:
            continue
        rec: Recommender = make_recommender(method, **(params or {}).get(method, {})).fit(train)
        recs = rec.recommend(rows, k) if len(rows) else None
        if recs is None:
            metrics = {"precision_at_k": 0.0, "recall_at_k": 0.0, "ndcg_at_k": 0.0}
            coverage = novelty = 0.0
        else:
            metrics = ranking_metrics(recs.items, relevant, rows, k)
            shown = recs.items[recs.items >= 0]
            coverage = len(np.unique(shown)) / max(len(train.track_ids), 1)
            novelty = float(np.mean(-np.log2((listeners[shown] + 1.0) / (n_users + 1.0)))) if len(shown) else 0.0
        out.append({"method": method, "k": k, **metrics, "coverage": coverage, "novelty": novelty,
                    "users": len(rows), "holdout_start": start})
    df = pd.DataFrame(out)
    best = df.sort_values(["ndcg_at_k", "method"], ascending=[False, True]).iloc[0]["method"]
    df["is_default"] = df["method"] == best
    return df
