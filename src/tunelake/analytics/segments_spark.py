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

from tunelake.analytics.segments import ListenerSegmenter
from tunelake.errors import InputError


@dataclass
class SparkSegments:
    k: int
    labels: np.ndarray  # per input row, 0 = largest segment
    centers_z: pd.DataFrame  # segment centres in scaled units (z-scores), one row per segment
    silhouette: float  # Spark's (squared-Euclidean) silhouette of the chosen k
    selection: pd.DataFrame  # k → silhouette, cost for every k scanned
    labels_by_k: dict[int, np.ndarray]  # raw MLlib labels of every k scanned, per input row


def _session(spark: Any) -> Any:
    if spark is not None:
        return spark
    from tunelake.warehouse.engines.spark import spark_session

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
    min_segment_size: int = 2,
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
            rows.append({"k": kk, "silhouette": sil, "cost": float(model.summary.trainingCost),
                         "smallest": int(min(model.summary.clusterSizes))})
            models[kk] = (model, pred)
        selection = pd.DataFrame(rows)
        big = selection[selection["smallest"] >= min_segment_size]  # as ListenerSegmenter: no one-listener segment
        best = int((big if len(big) else selection).sort_values(["silhouette", "k"], ascending=[False, True])
                   .iloc[0]["k"]) if k == "auto" else ks[0]
        keys = features[["user_key"]]
        labels_by_k = {
            kk: keys.merge(p.select("user_key", "prediction").toPandas(), on="user_key", how="left")[
                "prediction"].to_numpy(dtype=int)
            for kk, (_, p) in models.items()
        }
        model = models[best][0]
    finally:
        data.unpersist()
    raw = labels_by_k[best]
    sizes = np.bincount(raw, minlength=best)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty(best, dtype=int)
    relabel[order] = np.arange(best)
    centers = np.array([np.asarray(c) for c in model.clusterCenters()])[order]
    selection["chosen"] = selection["k"] == best
    return SparkSegments(
        k=best, labels=relabel[raw], centers_z=pd.DataFrame(centers, columns=feature_names),
        silhouette=float(selection.loc[selection["chosen"], "silhouette"].iloc[0]), selection=selection,
        labels_by_k=labels_by_k,
    )


class _NearestCentre:
    """predict() for centres MLlib found: the nearest one (what MLlib's model does), without a Spark job."""

    def __init__(self, centres: np.ndarray) -> None:
        self.cluster_centers_ = centres

    def predict(self, Z: np.ndarray) -> np.ndarray:
        d = ((np.asarray(Z, dtype=float)[:, None, :] - self.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
        return d.argmin(axis=1)


class SparkListenerSegmenter(ListenerSegmenter):
    """A ``ListenerSegmenter`` whose K-means runs on Spark MLlib: the drop-in for the analytics step when the
    engine is Spark. Same parameters and fitted attributes (``k_``, ``labels_``, ``names_``, ``selection_``,
    ``projection_``, ``stability_`` …), so ``segment_tables`` and the warehouse tables are unchanged; silhouette
    and Calinski-Harabasz in ``selection_`` are scikit-learn's, computed on MLlib's labels.
    """

    spark: Any = None  # a SparkSession to use; None = tunelake's shared session

    def _fit(self, X: pd.DataFrame | np.ndarray) -> SparkListenerSegmenter:
        from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
        from sklearn.preprocessing import StandardScaler


        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=float))
        if frame.isna().any().any():
            raise InputError("features contain missing values", field="features", hint="impute before fitting")
        names = [str(c) for c in frame.columns]
        self.feature_names_in_ = np.array(names)
        data = frame.to_numpy(dtype=float)
        n = len(data)
        ks = self._validate(n)
        self.scaler_ = StandardScaler().fit(data)
        Z = self.scaler_.transform(data)
        rows = pd.DataFrame(data, columns=names)
        rows.insert(0, "user_key", np.arange(n, dtype="int64"))
        n_init = 4 if self.n_init == "auto" else int(self.n_init)
        res = fit_spark_segments(rows, names, k=self.k if self.k == "auto" else int(self.k),
                                 k_range=(ks[0], ks[-1]), seed=self.random_state, n_init=n_init, spark=self.spark,
                                 min_segment_size=self.min_segment_size)
        sel = []
        for kk, lab in res.labels_by_k.items():
            many = kk >= 2 and len(set(lab)) > 1
            pick = slice(None) if n <= self.silhouette_sample else np.random.default_rng(
                self.random_state).choice(n, self.silhouette_sample, replace=False)
            cost = float(res.selection.loc[res.selection["k"] == kk, "cost"].iloc[0])
            sel.append({"k": kk, "silhouette": float(silhouette_score(Z[pick], lab[pick])) if many else np.nan,
                        "inertia": cost,
                        "calinski_harabasz": float(calinski_harabasz_score(Z, lab)) if many else np.nan,
                        "smallest": int(res.selection.loc[res.selection["k"] == kk, "smallest"].iloc[0])})
        self.selection_ = pd.DataFrame(sel)
        self.selection_["chosen"] = self.selection_["k"] == res.k
        self.k_ = res.k
        self.labels_ = res.labels
        self.singletons_ = [int(s) for s in np.flatnonzero(np.bincount(self.labels_, minlength=self.k_) == 1)]
        self.cluster_centers_ = res.centers_z.to_numpy()
        self._relabel = np.arange(self.k_)  # MLlib's labels are already numbered by size
        self.kmeans_ = _NearestCentre(self.cluster_centers_)
        aris = [adjusted_rand_score(self.labels_, fit_spark_segments(
                    rows, names, k=self.k_, seed=self.random_state + 1000 * s, n_init=1, spark=self.spark).labels)
                for s in range(1, int(self.stability_seeds) + 1)]
        self.stability_ = float(np.mean(aris)) if aris else float("nan")
        self._describe(Z, Z)
        self.silhouette_ = float(self.selection_.loc[self.selection_["chosen"], "silhouette"].iloc[0])
        return self


def spark_segmenter(spark: Any = None, **params: Any) -> SparkListenerSegmenter:
    """A SparkListenerSegmenter with ``ListenerSegmenter``'s parameters, on the given SparkSession."""
    model = SparkListenerSegmenter(**params)
    model.spark = spark
    return model
