"""Listener segmentation: standard-scaled user features, K-means, k chosen by silhouette, named segments.

``ListenerSegmenter`` follows scikit-learn's estimator conventions (parameters stored untouched in ``__init__``,
validated in ``fit``; ``fit`` returns self; learned state ends in ``_``), so it can be cloned, grid-searched and
tested like any sklearn estimator.

Large populations: silhouette is O(n²), so it is computed on a random sample (``silhouette_sample``). Above
``scan_sample`` users the k-scan and the stability check run on a random subsample (K-means with 3 inits); the
final model then refines the chosen centres on everyone with MiniBatchKMeans (in float32). That keeps 1M users
under a minute on two cores (benchmarks/bench_segments.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tunelake.errors import InputError

# How a strongly high (z > 0) or low (z < 0) feature reads in a segment name. Adjectives say when/where/what era,
# nouns say how the segment listens. The name combines the most distinctive adjective and noun.
ADJECTIVES: dict[str, tuple[str | None, str | None]] = {
    "night_share": ("Late-night", None),
    "morning_share": ("Early-morning", None),
    "afternoon_share": ("Daytime", None),
    "evening_share": ("Evening", None),
    "weekend_share": ("Weekend", "Weekday"),
    "podcast_share": ("Podcast-loving", None),
    "mobile_share": ("On-the-go", None),
    "desktop_share": ("Desk-bound", None),
    "web_share": ("Browser-based", None),
    "other_platform_share": ("Living-room", None),
    "release_year_mean": ("Up-to-date", "Nostalgic"),
    "mainstreamness": ("Mainstream", "Niche"),
    "energy": ("High-energy", "Mellow"),
    "danceability": ("Dance-floor", None),
    "acousticness": ("Acoustic", None),
    "instrumentalness": ("Instrumental", None),
}
NOUNS: dict[str, tuple[str | None, str | None]] = {
    "discovery_rate": ("explorers", "regulars"),
    "skip_rate": ("skippers", None),
    "repeat_rate": ("loyalists", "samplers"),
    "shuffle_rate": ("shufflers", "album listeners"),
    "log_plays": ("heavy listeners", "casual listeners"),
    "hours_per_active_day": ("marathoners", "light listeners"),
    "session_minutes_mean": ("long-session listeners", "quick-session listeners"),
    "artist_entropy": ("eclectics", "devotees"),
    "genre_entropy": ("genre-hoppers", "genre purists"),
    "completion_mean": ("full-track listeners", None),
    "sessions_per_active_day": ("frequent dippers", None),
    "instrumentalness": ("focus listeners", None),
    "speechiness": ("talk lovers", None),
    "podcast_share": ("commuters", None),
}


# Devices say less about taste than time of day or era: their z-scores count half when naming.
_WEIGHT = {"mobile_share": 0.5, "desktop_share": 0.5, "web_share": 0.5, "other_platform_share": 0.5}


def _phrase(z: pd.Series, vocab: dict[str, tuple[str | None, str | None]],
            exclude: set[str] | frozenset[str] = frozenset()) -> tuple[str | None, str | None]:
    best: tuple[float, str | None, str | None] = (0.0, None, None)
    for feat, (hi, lo) in vocab.items():
        if feat not in z.index or feat in exclude:
            continue
        v = float(z[feat]) * _WEIGHT.get(feat, 1.0)
        word = hi if v > 0 else lo
        if word and abs(v) > best[0]:
            best = (abs(v), word, feat)
    return best[1], best[2]


def name_segments(z: pd.DataFrame) -> list[str]:
    """A human-readable name per row of z-scored segment centres, e.g. "Late-night explorers"; unique."""
    names: list[str] = []
    for _, row in z.iterrows():
        adj, adj_feat = _phrase(row, ADJECTIVES)
        noun, _ = _phrase(row, NOUNS, exclude={adj_feat} if adj_feat else set())
        name = " ".join(w for w in (adj, noun or "listeners") if w)
        names.append(name[0].upper() + name[1:])
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # disambiguate duplicates by their next most distinctive feature
        if n in seen:
            top = z.iloc[i].abs().sort_values(ascending=False).index[0]
            names[i] = f"{n} ({'high' if z.iloc[i][top] > 0 else 'low'} {top.replace('_', ' ')})"
        seen[names[i]] = i
    return names


class ListenerSegmenter(ClusterMixin, BaseEstimator):
    """K-means listener segments with automatic k, stability and names.

    Parameters
    ----------
    k : 'auto' or int — 'auto' picks the k in ``k_range`` with the best silhouette.
    k_range : inclusive (min, max) range scanned when k='auto'; the scan is always reported.
    n_init : K-means initialisations per fit ('auto' = 10 up to ``minibatch_above`` users, 3 above).
    random_state : seed for everything random.
    stability_seeds : extra seeds refit at the chosen k; ``stability_`` is their mean ARI against the model.
    min_segment_size : with k='auto', a k whose K-means leaves a segment smaller than this is passed over
        (a "segment" of one listener describes that listener, not a group); when every k does, the best
        silhouette wins anyway and ``singletons_`` says which segments are one listener.
    silhouette_sample, scan_sample, minibatch_above : see the module docstring.
    """

    def __init__(self, k: int | str = "auto", k_range: tuple[int, int] = (2, 10), n_init: int | str = "auto",
                 random_state: int = 0, stability_seeds: int = 5, silhouette_sample: int = 5_000,
                 scan_sample: int = 30_000, minibatch_above: int = 50_000, min_segment_size: int = 2) -> None:
        self.k = k
        self.k_range = k_range
        self.n_init = n_init
        self.random_state = random_state
        self.stability_seeds = stability_seeds
        self.silhouette_sample = silhouette_sample
        self.scan_sample = scan_sample
        self.minibatch_above = minibatch_above
        self.min_segment_size = min_segment_size

    # --- helpers ----------------------------------------------------------------------------------------------
    def _kmeans(self, k: int, n: int, seed: int, total: int) -> KMeans | MiniBatchKMeans:
        """K-means for ``n`` rows out of a population of ``total``."""
        n_init = self.n_init if self.n_init != "auto" else (10 if total <= self.minibatch_above else 3)
        if n > self.minibatch_above:
            return MiniBatchKMeans(n_clusters=k, n_init=n_init, random_state=seed, batch_size=4096,
                                   max_no_improvement=10)
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed)

    def _validate(self, n: int) -> list[int]:
        if self.k == "auto":
            lo, hi = self.k_range
            if not (isinstance(lo, int | np.integer) and isinstance(hi, int | np.integer)) or lo < 2 or hi < lo:
                raise InputError(f"bad k_range {self.k_range!r}", field="k_range",
                                 hint="use (min, max) with 2 ≤ min ≤ max")
            ks = [k for k in range(lo, hi + 1) if k < n]
        elif isinstance(self.k, int | np.integer) and self.k >= 1:
            ks = [int(self.k)]
        else:
            raise InputError(f"bad k {self.k!r}", field="k", hint="use 'auto' or a whole number ≥ 1")
        if not ks or ks[-1] > n:
            raise InputError(f"{n} listeners are too few for k={self.k}", field="k",
                             hint="import more listeners or pass a smaller --k")
        return ks

    # --- fit / predict ----------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame | np.ndarray, y: Any = None) -> ListenerSegmenter:
        # OpenMP threads spin-wait: on small data or a busy machine one thread is many times faster.
        with threadpool_limits(limits=1 if len(X) < 200_000 else None):
            return self._fit(X)

    def _fit(self, X: pd.DataFrame | np.ndarray) -> ListenerSegmenter:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=float))
        if frame.isna().any().any():
            raise InputError("features contain missing values", field="features", hint="impute before fitting")
        self.feature_names_in_ = np.array([str(c) for c in frame.columns])
        data = frame.to_numpy(dtype=float)
        n = len(data)
        ks = self._validate(n)
        rng = np.random.default_rng(self.random_state)
        self.scaler_ = StandardScaler().fit(data)
        Z = self.scaler_.transform(data)
        if n > self.scan_sample:
            Z = Z.astype(np.float32)
        scan = Z if n <= self.scan_sample else Z[rng.choice(n, self.scan_sample, replace=False)]
        sil_rows = (rng.choice(len(scan), self.silhouette_sample, replace=False)
                    if len(scan) > self.silhouette_sample else None)  # the same sample for every k

        rows = []
        models: dict[int, Any] = {}
        for k in ks:
            km = self._kmeans(k, len(scan), self.random_state, n).fit(scan)
            labels = km.labels_
            if k >= 2 and len(set(labels)) > 1:
                pick = sil_rows if sil_rows is not None else slice(None)  # float64: sklearn upcasts float32 slowly
                sil = float(silhouette_score(scan[pick].astype(np.float64), labels[pick]))
                ch = float(calinski_harabasz_score(scan, labels))
            else:
                sil, ch = float("nan"), float("nan")
            rows.append({"k": k, "silhouette": sil, "inertia": float(km.inertia_), "calinski_harabasz": ch,
                         "smallest": int(np.bincount(labels, minlength=k).min())})
            models[k] = km
        sel = pd.DataFrame(rows)
        if self.k == "auto":
            big = sel[sel["smallest"] >= self.min_segment_size]
            best = (big if len(big) else sel).sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]
            self.k_ = int(best["k"])
        else:
            self.k_ = int(self.k)
        sel["chosen"] = sel["k"] == self.k_
        self.selection_ = sel.reset_index(drop=True)

        if len(scan) == n:
            final = models[self.k_]
        else:  # refine the scan's centres on everyone: one MiniBatch pass from a good start
            final = MiniBatchKMeans(n_clusters=self.k_, init=models[self.k_].cluster_centers_, n_init=1,
                                    random_state=self.random_state, batch_size=8192, max_no_improvement=5).fit(Z)
        raw = final.labels_
        # Segment numbers by size, largest first, so numbering is stable across runs of the same data.
        sizes = np.bincount(raw, minlength=self.k_)
        order = np.argsort(-sizes, kind="stable")
        self._relabel = np.empty(self.k_, dtype=int)
        self._relabel[order] = np.arange(self.k_)
        self.kmeans_ = final
        self.labels_ = self._relabel[raw]
        self.cluster_centers_ = final.cluster_centers_[order]  # in scaled units = z-scores of the centres
        self.singletons_ = [int(s) for s in np.flatnonzero(np.bincount(self.labels_, minlength=self.k_) == 1)]

        # Stability: the same k from other seeds, compared with the chosen model on the scan set.
        ref = self._relabel[final.predict(scan)]
        aris = []
        for s in range(1, int(self.stability_seeds) + 1):
            other = self._kmeans(self.k_, len(scan), self.random_state + 1000 * s, n).fit(scan)
            aris.append(adjusted_rand_score(ref, other.labels_))
        self.stability_ = float(np.mean(aris)) if aris else float("nan")

        self._describe(Z, scan)
        self.silhouette_ = float(sel.loc[sel["k"] == self.k_, "silhouette"].iloc[0])
        return self

    def _describe(self, Z: np.ndarray, fit_on: np.ndarray) -> None:
        """Names from the centres, and the 2-D map the dashboard draws (PCA fitted on `fit_on`), whichever engine
        found the clusters."""
        z = pd.DataFrame(self.cluster_centers_, columns=self.feature_names_in_)
        self.names_ = name_segments(z)
        self.centers_z_ = z
        pca = PCA(n_components=min(2, Z.shape[1]), random_state=self.random_state).fit(fit_on)
        proj = pca.transform(Z)
        if proj.shape[1] == 1:
            proj = np.column_stack([proj[:, 0], np.zeros(len(Z))])
        self.pca_, self.projection_ = pca, proj

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        data = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)
        with threadpool_limits(limits=1 if len(data) < 200_000 else None):
            Z = self.scaler_.transform(data).astype(self.kmeans_.cluster_centers_.dtype, copy=False)
            return self._relabel[self.kmeans_.predict(Z)]


def segment_tables(features: pd.DataFrame, model: ListenerSegmenter,
                   feature_names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows for ``user_segment`` and ``segment_profile`` (without run_id) from a fitted model."""
    labels = model.labels_
    user_segment = pd.DataFrame({
        "user_key": features["user_key"].to_numpy(), "segment": labels.astype(int),
        "segment_name": [model.names_[s] for s in labels],
        "x": model.projection_[:, 0], "y": model.projection_[:, 1],
    })
    vals = features[feature_names]
    mu, sd = vals.mean(), vals.std(ddof=0).replace(0, np.nan)
    rows = []
    n = len(features)
    for s in range(model.k_):
        mask = labels == s
        means = vals[mask].mean()
        z = ((means - mu) / sd).fillna(0.0)
        for feat in feature_names:
            rows.append({"segment": s, "segment_name": model.names_[s], "size": int(mask.sum()),
                         "share": float(mask.sum()) / n, "feature": feat, "mean": float(means[feat]),
                         "z_score": float(z[feat])})
    return user_segment, pd.DataFrame(rows)


def pairwise_ari(labelings: list[np.ndarray]) -> float:
    """Mean ARI over all pairs of labelings (a stability summary when there is no reference model)."""
    pairs = list(itertools.combinations(labelings, 2))
    return float(np.mean([adjusted_rand_score(a, b) for a, b in pairs])) if pairs else float("nan")
