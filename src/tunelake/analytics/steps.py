"""The analytics pipeline step: features → segments → evaluated recommendations, written into the warehouse.

``run_analytics`` takes a read-write DuckDB connection so the pipeline can run it inside a build (before the
warehouse switch) and ``tunelake segment`` / ``tunelake recommend`` can run it through ``warehouse_writer``.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from tunelake.analytics.evaluate import evaluate
from tunelake.analytics.features import FEATURE_NAMES, update_features, write_features, write_table
from tunelake.analytics.insights import table_exists
from tunelake.analytics.recommend import load_interactions, make_recommender, recommendations_frame
from tunelake.analytics.segments import ListenerSegmenter, segment_tables
from tunelake.analytics.split import SplitSpec
from tunelake.settings import Settings
from tunelake.workspace import Workspace

Progress = Callable[[int, int, str], None]


def truth_file(ws: Workspace) -> Path | None:
    """The synthetic world's ground truth when the workspace holds one (``tunelake demo``), else None."""
    for cand in (ws.root / "world" / "truth" / "listeners.csv",):
        if cand.exists():
            return cand
    return None


def ari_against_truth(con: duckdb.DuckDBPyConnection, user_segment: pd.DataFrame, truth: Path) -> float | None:
    """Adjusted Rand index between segments and the generator's planted listener types (by handle)."""
    from sklearn.metrics import adjusted_rand_score

    t = pd.read_csv(truth)[["handle", "listener_type"]]  # planted labels: a CSV of handle, listener_type
    handles = con.execute("SELECT user_key, handle FROM dim_user").df()
    m = user_segment.merge(handles, on="user_key").merge(t, on="handle")
    return float(adjusted_rand_score(m["listener_type"], m["segment"])) if len(m) >= 2 else None


def run_segments(con: duckdb.DuckDBPyConnection, features: pd.DataFrame, run_id: str, k: int | str = "auto",
                 truth: Path | None = None, engine: str = "duckdb") -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Fit the segmenter on ``features`` and write user_segment, segment_profile and segment_selection.

    With the Spark engine the K-means runs in Spark MLlib (same scaling, k choice and naming)."""
    n = len(features)
    if n < 3:
        return {"rows": 0, "summary": f"skipped: {n} listener(s), segmentation needs at least 3"}, None
    lo, hi = 2, min(10, n - 1)
    params = {"k": k if k == "auto" else int(k), "k_range": (lo, hi), "random_state": 0}
    if engine == "spark":
        from tunelake.analytics.segments_spark import spark_segmenter

        model = spark_segmenter(**params)
    else:
        model = ListenerSegmenter(**params)
    t0 = time.perf_counter()
    model.fit(features[FEATURE_NAMES])
    seconds = time.perf_counter() - t0
    user_segment, profile = segment_tables(features, model, FEATURE_NAMES)
    write_table(con, "user_segment", user_segment, run_id)
    write_table(con, "segment_profile", profile, run_id)
    write_table(con, "segment_selection", model.selection_, run_id)
    ari = ari_against_truth(con, user_segment, truth) if truth else None
    sizes = user_segment["segment"].value_counts().sort_index()
    singles = [int(s) for s, c in sizes.items() if c == 1]
    alone = ("; " + ", ".join(f"segment {s} “{model.names_[s]}” is a single listener" for s in singles)
             + (" (every k tried leaves one: too few listeners to say more)" if k == "auto"
                else f" (k = {k} was fixed)")) if singles else ""
    info = {
        "rows": len(user_segment), "k": model.k_, "silhouette": round(model.silhouette_, 4),
        "stability": round(model.stability_, 4), "ari_vs_truth": None if ari is None else round(ari, 4),
        "names": {int(s): model.names_[s] for s in range(model.k_)},
        "sizes": {int(s): int(c) for s, c in sizes.items()}, "singletons": singles, "seconds": round(seconds, 3),
        "summary": (f"{model.k_} segments, silhouette {model.silhouette_:.2f}, stability ARI {model.stability_:.2f}"
                    + (f", ARI vs planted types {ari:.2f}" if ari is not None else "") + alone),
    }
    return info, user_segment


def split_spec(settings: Settings) -> SplitSpec:
    """The evaluation's per-listener split from the workspace settings."""
    return SplitSpec(settings.eval_split, settings.eval_test_weeks, settings.eval_test_percent,
                     settings.eval_min_train_plays, settings.eval_listeners)


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), 4)


def kept_evaluation(ev: pd.DataFrame | None, settings: Settings, now: datetime | None = None) -> pd.DataFrame | None:
    """The last evaluation (the previous warehouse file's ``rec_evaluation``) when a run may keep it: younger than
    ``eval_refresh_hours`` and made with the split the settings ask for. The evaluation (parameters chosen on
    validation, every method on the test period, bootstrap intervals) is most of a pipeline run at 10M plays
    (~170 s of ~225 s), and the plays of one poll do not change which method wins; the chosen method is still
    refitted on every play."""
    if ev is None or settings.eval_refresh_hours <= 0 or not len(ev) or "run_id" not in ev:
        return None
    if int(ev["is_default"].sum()) != 1 or set(ev["split"]) != {split_spec(settings).describe()}:
        return None
    made = evaluated_at(str(ev["run_id"].iloc[0]))
    now = now or datetime.now(UTC)
    if made is None or not timedelta(0) <= now - made < timedelta(hours=settings.eval_refresh_hours):
        return None
    return ev


def evaluated_at(run_id: str) -> datetime | None:
    """When the run that wrote an evaluation started: pipeline run ids and `tunelake recommend`'s begin with it."""
    m = re.search(r"(\d{8}T\d{6})(\d{6})?", run_id)
    if m is None:
        return None
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def run_recommendations(con: duckdb.DuckDBPyConnection, run_id: str, segments: pd.DataFrame | None,
                        n: int = 20, settings: Settings | None = None,
                        previous_evaluation: pd.DataFrame | None = None) -> dict[str, Any]:
    """Evaluate every method on the per-listener split, and write the default method's recommendations for
    every listener (fitted on the whole history with its validation-chosen parameters) into ``recommendations``.

    The default is popularity unless a method beats it with a bootstrap interval above zero (evaluate.py).
    ``previous_evaluation`` (after an incremental build) stands instead of a new one when it is recent
    (`kept_evaluation`), with the run id of the run that made it."""
    settings = settings or Settings()
    t0 = time.perf_counter()
    kept = kept_evaluation(previous_evaluation, settings)
    ev = kept if kept is not None else evaluate(con, segments, spec=split_spec(settings),
                                                rounds=settings.eval_bootstrap)
    write_table(con, "rec_evaluation", ev, run_id if kept is None else str(kept["run_id"].iloc[0]))
    chosen = ev.loc[ev["is_default"]].iloc[0]
    best = str(chosen["method"])
    data = load_interactions(con, segments=segments)
    rec = make_recommender(best, **json.loads(chosen["params"])).fit(data)
    rows = np.arange(len(data.user_keys))
    frame = recommendations_frame(rec, rec.recommend(rows, n), rows)
    write_table(con, "recommendations", frame, run_id)
    by = ev.set_index("method")
    users = int(ev["users"].iloc[0])
    ndcg = {str(m): _num(v) for m, v in by["ndcg_at_k"].items()}
    best_ndcg, pop = ndcg.get(best), ndcg.get("popularity")
    if users == 0:
        summary = f"default {best}: no listener could be evaluated"
    else:
        lo, hi = _num(chosen["ndcg_low"]), _num(chosen["ndcg_high"])
        summary = (f"default {best}, NDCG@10 {best_ndcg:.3f} [{lo:.3f}, {hi:.3f}] over {users} listeners"
                   + (f" (popularity {pop:.3f})" if best != "popularity" and pop is not None else "")
                   + f" — {chosen['decision']}")
    return {
        "rows": len(frame), "best_method": best, "ndcg_at_10": ndcg,
        "ndcg_ci": {str(m): [_num(r.ndcg_low), _num(r.ndcg_high)] for m, r in by.iterrows()},
        "recall_at_10": {str(m): _num(v) for m, v in by["recall_at_k"].items()},
        "map_at_10": {str(m): _num(v) for m, v in by["map_at_k"].items()},
        "delta_vs_popularity": {str(m): [_num(r.delta_ndcg), _num(r.delta_low), _num(r.delta_high)]
                                for m, r in by.iterrows() if m != "popularity"},
        "params": {str(m): json.loads(p) for m, p in by["params"].items()},
        "users_evaluated": users, "val_users": int(ev["val_users"].iloc[0]), "split": str(ev["split"].iloc[0]),
        "decision": str(chosen["decision"]), "seconds": round(time.perf_counter() - t0, 3), "summary": summary,
        "evaluated_by": run_id if kept is None else str(kept["run_id"].iloc[0]),
        "evaluation": "new" if kept is None else "kept (younger than eval_refresh_hours)",
    }


def run_analytics(ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, progress: Progress | None = None,
                  k: int | str = "auto", previous_evaluation: pd.DataFrame | None = None) -> dict[str, Any]:
    """Compute features → segments → recommendations + evaluation into ``con``; return headline figures.
    ``previous_evaluation``: after an incremental build, the last evaluation, which may stand (`kept_evaluation`)."""
    from threadpoolctl import threadpool_limits  # ships with scikit-learn

    say = progress or (lambda done, total, what: None)
    # implicit's ALS parallelises itself; a threaded BLAS underneath only oversubscribes the cores.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _run(ws, con, run_id, say, k, previous_evaluation)


def _run(ws: Workspace, con: duckdb.DuckDBPyConnection, run_id: str, say: Progress, k: int | str,
         previous_evaluation: pd.DataFrame | None) -> dict[str, Any]:
    say(0, 3, "features")
    if not table_exists(con, "fact_play") or con.execute("SELECT count(*) FROM fact_play").fetchone()[0] == 0:
        return {"features": {"rows": 0, "summary": "skipped: no music plays"}}
    t0 = time.perf_counter()
    features, aggregated = update_features(con)
    write_features(con, features, run_id)
    out: dict[str, Any] = {"features": {"rows": len(features), "features": len(FEATURE_NAMES),
                                        "listeners_aggregated": aggregated,
                                        "seconds": round(time.perf_counter() - t0, 3),
                                        "summary": f"{len(features)} listeners × {len(FEATURE_NAMES)} features"}}
    say(1, 3, "segments")
    seg_info, user_segment = run_segments(con, features, run_id, k=k, truth=truth_file(ws), engine=ws.settings.engine)
    out["segments"] = seg_info
    say(2, 3, "recommendations")
    out["recommendations"] = run_recommendations(con, run_id, user_segment, settings=ws.settings,
                                                 previous_evaluation=previous_evaluation)
    say(3, 3, "done")
    rec = out["recommendations"]
    out.update({"k": seg_info.get("k"), "silhouette": seg_info.get("silhouette"),
                "ari": seg_info.get("ari_vs_truth"), "stability": seg_info.get("stability"),
                "best_method": rec["best_method"], "ndcg": rec["ndcg_at_10"]})
    return out
