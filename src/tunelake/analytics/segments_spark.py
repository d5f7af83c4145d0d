"""Listener segments with Spark MLlib K-means, for when the engine is Spark and the features live on a cluster.

It fits on the same inputs as the scikit-learn path (``tunelake.analytics.segments``): every feature standard-scaled
with the population standard deviation (scikit-learn's StandardScaler; a constant feature scales to 0), then
K-means with k-means|| initialisation. Segment numbers are ordered by size, largest first, as there. The parity
test (tests/parity/test_kmeans_parity.py) checks that both paths find the same segments on planted data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tunelake.errors import InputError


@dataclass
class SparkSegments:
    k: int
    labels: np.ndarray  # per input row, 0 = largest segment
    centers_z: pd.DataFrame  # segment centres in scaled units (z-scores), one row per segment
    silhouette: float  # Spark's (squared-Euclidean) silhouette of the chosen k
    selection: pd.DataFrame  # k → silhouette, cost for every k scanned


def _session(spark: Any) -> Any:
    if spark is not None:
        return spark
    from tunelake.warehouse.spark import spark_session

    return spark_session()


def scaled_frame(spark: Any, features: pd.DataFrame | Any, feature_names: list[str]) -> Any:
    """A Spark DataFrame (user_key, features vector) of z-scored features, population standard deviation."""
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    df = features if hasattr(features, "sparkSession") else spark.createDataFrame(
        features[["user_key", *feature_names]].astype({c: "float64" for c in feature_names}))
    stats = df.agg(*[F.avg(c).alias(f"m_{i}") for i, c in enumerate(feature_names)],
                   *[F.stddev_pop(c).alias(f"s_{i}") for i, c in enumerate(feature_names)]).first()
    z_cols = []
    for i, c in enumerate(feature_names):
        mean, sd = stats[f"m_{i}"], stats[f"s_{i}"]
        z = (F.col(c) - F.lit(mean)) / F.lit(sd) if sd and sd > 0 else F.lit(0.0)
        z_cols.append(z.cast("double").alias(f"z_{i}"))
    scaled = df.select("user_key", *z_cols)
    assembler = VectorAssembler(inputCols=[f"z_{i}" for i in range(len(feature_names))], outputCol="features")
    return assembler.transform(scaled).select("user_key", "features")


def fit_spark_segments(
    features: pd.DataFrame,
    feature_names: list[str],
    k: int | str = "auto",
    *,
    k_range: tuple[int, int] = (2, 10),
    seed: int = 0,
    n_init: int = 4,
    max_iter: int = 50,
    spark: Any = None,
) -> SparkSegments:
    """K-means segments of one row per listener (``user_key`` plus ``feature_names``), computed by Spark MLlib.

    MLlib fits one initialisation per call; like scikit-learn's ``n_init``, the best (lowest cost) of ``n_init``
    seeds is kept, which is what makes both paths land on the same optimum rather than on different local ones.
    """
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator

    n = len(features)
    if features[feature_names].isna().any().any():
        raise InputError("features contain missing values", field="features", hint="impute before fitting")
    if k == "auto":
        ks = [x for x in range(k_range[0], k_range[1] + 1) if x < n]
    elif isinstance(k, int | np.integer) and 1 <= int(k) <= n:
        ks = [int(k)]
    else:
        raise InputError(f"bad k {k!r} for {n} listeners", field="k", hint="use 'auto' or 1 ≤ k ≤ listeners")
    if not ks:
        raise InputError(f"{n} listeners are too few to segment", field="k", hint="import more listeners")
    session = _session(spark)
    data = scaled_frame(session, features, feature_names).cache()
    try:
        evaluator = ClusteringEvaluator(featuresCol="features", predictionCol="prediction",
                                        metricName="silhouette", distanceMeasure="squaredEuclidean")
        rows, models = [], {}
        for kk in ks:
            fits = [KMeans(k=kk, seed=seed + 1000 * i, maxIter=max_iter, tol=1e-6, initMode="k-means||",
                           featuresCol="features").fit(data) for i in range(max(1, n_init))]
            model = min(fits, key=lambda m: m.summary.trainingCost)
            pred = model.transform(data)
            sil = float(evaluator.evaluate(pred)) if kk >= 2 else float("nan")
            rows.append({"k": kk, "silhouette": sil, "cost": float(model.summary.trainingCost)})
            models[kk] = (model, pred)
        selection = pd.DataFrame(rows)
        best = int(selection.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]["k"]) \
            if k == "auto" else ks[0]
        model, pred = models[best]
        assigned = pred.select("user_key", "prediction").toPandas()
    finally:
        data.unpersist()
    raw = features[["user_key"]].merge(assigned, on="user_key", how="left")["prediction"].to_numpy(dtype=int)
    sizes = np.bincount(raw, minlength=best)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty(best, dtype=int)
    relabel[order] = np.arange(best)
    centers = np.array([np.asarray(c) for c in model.clusterCenters()])[order]
    selection["chosen"] = selection["k"] == best
    return SparkSegments(
        k=best, labels=relabel[raw], centers_z=pd.DataFrame(centers, columns=feature_names),
        silhouette=float(selection.loc[selection["chosen"], "silhouette"].iloc[0]), selection=selection,
    )
