"""Segmentation and recommendation figures.

1. Demo size (120 listeners × 180 days, seed 42, 7 planted listener types): the analytics step's own figures —
   k, silhouette, stability, ARI against the planted types, and precision/recall/NDCG@10, coverage and novelty
   of every recommender with the best method's lift over popularity.
2. Scale: 1M listeners' features → ``ListenerSegmenter()`` at default settings (k-scan 2–10 by silhouette,
   stability over 5 seeds, names, PCA projection). Target < 60 s. The 1M feature rows are drawn per planted type
   from the per-type mean and standard deviation of the demo's real features, so the clusters have the real
   shape and spread; the ARI against the drawn types is reported too.

    python -m benchmarks.bench_segments            # BENCH_SEGMENT_USERS=1000000 by default

Writes benchmarks/results/segments.json.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import WORK, maxrss_self_mb, save

DEMO = {"users": 120, "days": 180, "seed": 42}
TARGET_S = 60.0


def demo_workspace() -> Path:
    from tunelake.cli.demo import run_demo
    from tunelake.warehouse.store import read_pointer
    from tunelake.workspace import open_workspace

    ws = WORK / "segments-demo"
    cfg = open_workspace(ws)
    if read_pointer(cfg) is None:
        run_demo(cfg, users=DEMO["users"], days=DEMO["days"], seed=DEMO["seed"])
    return ws


def demo_figures(ws: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    from tunelake.analytics.steps import run_analytics
    from tunelake.synthetic.world import load_truth
    from tunelake.warehouse.store import warehouse_writer
    from tunelake.workspace import open_workspace

    cfg = open_workspace(ws)
    t0 = time.perf_counter()
    with warehouse_writer(cfg, "bench-segments") as con:
        out = run_analytics(cfg, con, "bench-segments")
        ev = con.execute("SELECT * FROM rec_evaluation ORDER BY ndcg_at_k DESC").df()
        feats = con.execute("SELECT f.*, u.handle FROM user_features f JOIN dim_user u USING (user_key)").df()
    seconds = time.perf_counter() - t0
    truth = load_truth(ws / "world")[["handle", "listener_type"]]
    feats = feats.merge(truth, on="handle")
    seg, rec = out["segments"], out["recommendations"]
    figures = {
        "listeners": seg["rows"], "k": seg["k"], "silhouette": seg["silhouette"], "stability_ari": seg["stability"],
        "ari_vs_planted_types": seg["ari_vs_truth"], "segment_names": list(seg["names"].values()),
        "best_method": rec["best_method"], "decision": rec["decision"],
        "users_evaluated": rec["users_evaluated"], "split": rec["split"],
        "recommenders": [
            {"method": r.method, "recall_at_10": _r(r.recall_at_k), "ndcg_at_10": _r(r.ndcg_at_k),
             "ndcg_at_10_ci": [_r(r.ndcg_low), _r(r.ndcg_high)], "map_at_10": _r(r.map_at_k),
             "coverage": _r(r.coverage), "novelty": _r(r.novelty), "diversity": _r(r.diversity),
             "params": r.params, "default": bool(r.is_default)}
            for r in ev.itertuples()],
        "analytics_step_seconds": round(seconds, 2),
    }
    return figures, feats


def _r(v: float | None) -> float | None:
    return None if v is None or v != v else round(float(v), 4)


def synthetic_features(feats: pd.DataFrame, n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    from tunelake.analytics.features import FEATURE_NAMES

    rng = np.random.default_rng(seed)
    groups = feats.groupby("listener_type")[FEATURE_NAMES]
    mean, sd = groups.mean().to_numpy(), groups.std(ddof=0).fillna(0).to_numpy()
    types = rng.integers(0, len(mean), n)
    data = mean[types] + sd[types] * rng.standard_normal((n, len(FEATURE_NAMES)))
    return pd.DataFrame(data, columns=FEATURE_NAMES), types


def main() -> None:
    from sklearn.metrics import adjusted_rand_score

    from tunelake.analytics.segments import ListenerSegmenter

    n = int(os.environ.get("BENCH_SEGMENT_USERS", "1000000"))
    demo, feats = demo_figures(demo_workspace())
    t0 = time.perf_counter()
    X, types = synthetic_features(feats, n)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = ListenerSegmenter().fit(X)
    fit_s = time.perf_counter() - t0
    scale = {
        "listeners": n, "features": X.shape[1], "seconds": round(fit_s, 2), "target_seconds": TARGET_S,
        "within_target": fit_s < TARGET_S, "k": model.k_, "silhouette": round(model.silhouette_, 4),
        "stability_ari": round(model.stability_, 4),
        "ari_vs_drawn_types": round(float(adjusted_rand_score(types, model.labels_)), 4),
        "scan_sample": model.scan_sample, "silhouette_sample": model.silhouette_sample,
        "feature_generation_seconds": round(gen_s, 2), "peak_rss_mb": round(maxrss_self_mb(), 1),
    }
    path = save("segments", {"demo": demo, "scale_1m" if n == 1_000_000 else f"scale_{n}": scale})
    print(f"demo: k={demo['k']} ARI={demo['ari_vs_planted_types']} best={demo['best_method']} "
          f"({demo['decision']}); {n:,} listeners segmented in {fit_s:.1f}s (k={model.k_}) → {path}")


if __name__ == "__main__":
    main()
