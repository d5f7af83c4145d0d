"""ListenerSegmenter: sklearn conventions, planted-cluster recovery, k selection, naming."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from tunelake.analytics.segments import ListenerSegmenter, name_segments, segment_tables
from tunelake.errors import InputError


def blobs(n: int = 300, k: int = 4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_blobs(n_samples=n, centers=k, n_features=6, cluster_std=0.6, random_state=seed)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]), y


def test_recovers_planted_clusters_and_picks_k() -> None:
    X, y = blobs()
    m = ListenerSegmenter(k_range=(2, 8), stability_seeds=3)
    assert m.fit(X) is m
    assert m.k_ == 4
    assert adjusted_rand_score(y, m.labels_) == pytest.approx(1.0)
    assert m.stability_ == pytest.approx(1.0)
    sel = m.selection_
    assert list(sel["k"]) == list(range(2, 9)) and sel.loc[sel.chosen, "k"].item() == 4
    assert sel.loc[sel.chosen, "silhouette"].item() == sel["silhouette"].max()
    assert (np.diff(sel["inertia"]) < 0).all()  # the elbow curve falls with k
    assert m.projection_.shape == (300, 2) and len(m.names_) == 4
    assert np.array_equal(m.predict(X), m.labels_)
    sizes = np.bincount(m.labels_)
    assert (np.diff(sizes) <= 0).all()  # segment 0 is the largest


def test_sklearn_conventions() -> None:
    m = ListenerSegmenter(k=3, random_state=7)
    assert m.get_params()["k"] == 3 and clone(m).get_params() == m.get_params()
    assert not hasattr(m, "labels_")  # nothing learned before fit
    X, _ = blobs(120, 3)
    m.fit(X)
    assert m.k_ == 3 and list(m.selection_["k"]) == [3]
    assert list(m.feature_names_in_) == list(X.columns)


def test_same_seed_same_result() -> None:
    X, _ = blobs(200, 5, seed=3)
    a = ListenerSegmenter(random_state=1, stability_seeds=1).fit(X)
    b = ListenerSegmenter(random_state=1, stability_seeds=1).fit(X)
    assert np.array_equal(a.labels_, b.labels_) and a.names_ == b.names_


def test_large_population_path_subsamples_the_scan() -> None:
    X, y = blobs(3000, 3, seed=2)
    m = ListenerSegmenter(k_range=(2, 5), scan_sample=800, minibatch_above=1000, silhouette_sample=300,
                          stability_seeds=2).fit(X)
    assert m.k_ == 3 and len(m.labels_) == 3000
    assert adjusted_rand_score(y, m.labels_) > 0.99
    assert type(m.kmeans_).__name__ == "MiniBatchKMeans"


def test_bad_parameters() -> None:
    X, _ = blobs(20, 2)
    with pytest.raises(InputError, match="k"):
        ListenerSegmenter(k=0).fit(X)
    with pytest.raises(InputError, match="k_range"):
        ListenerSegmenter(k_range=(1, 3)).fit(X)
    with pytest.raises(InputError, match="too few"):
        ListenerSegmenter(k=30).fit(X)
    with pytest.raises(InputError, match="missing"):
        ListenerSegmenter(k=2).fit(X.assign(f0=np.nan))


def test_names_from_distinctive_features() -> None:
    z = pd.DataFrame({
        "night_share": [2.5, -0.5, 0.1], "discovery_rate": [1.8, -0.2, 0.0], "skip_rate": [0.1, 0.2, 2.0],
        "release_year_mean": [0.3, -2.2, 0.0], "repeat_rate": [-0.3, 1.5, 0.0], "afternoon_share": [0, 0, 1.2],
    })
    assert name_segments(z) == ["Late-night explorers", "Nostalgic loyalists", "Daytime skippers"]
    dup = pd.DataFrame({"night_share": [2.0, 1.0], "discovery_rate": [1.0, 0.5], "tempo": [0.0, 3.0]})
    names = name_segments(dup)
    assert names[0] == "Late-night explorers" and names[1].startswith("Late-night explorers (high tempo")


def test_segment_tables() -> None:
    X, _ = blobs(90, 3)
    feats = X.assign(user_key=np.arange(90))
    m = ListenerSegmenter(k=3).fit(X)
    us, prof = segment_tables(feats, m, list(X.columns))
    assert len(us) == 90 and set(us["segment"]) == {0, 1, 2}
    assert len(prof) == 3 * 6 and prof.groupby("segment")["size"].first().sum() == 90
    # z-scores of a feature, weighted by segment size, average to zero
    f0 = prof[prof.feature == "f0"]
    assert (f0["z_score"] * f0["size"]).sum() == pytest.approx(0.0, abs=1e-9)


def _three_groups_and_one(outlier: list[float], sd: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, sd, (10, 2)) for c in ([0, 0], [5, 0], [0, 5])] + [np.array([outlier])])
    return pd.DataFrame(X, columns=["a", "b"])


def test_a_single_listener_segment_is_passed_over() -> None:
    X = _three_groups_and_one([9, 9], 0.3)
    # silhouette alone prefers k = 4: the three groups plus the odd listener on their own
    alone = ListenerSegmenter(k_range=(2, 5), min_segment_size=1, stability_seeds=1).fit(X)
    assert alone.k_ == 4 and sorted(np.bincount(alone.labels_)) == [1, 10, 10, 10] and alone.singletons_ == [3]
    # the default passes over every k that leaves one listener alone: k = 3, the odd one joins a group
    m = ListenerSegmenter(k_range=(2, 5), stability_seeds=1).fit(X)
    assert m.k_ == 3 and sorted(np.bincount(m.labels_)) == [10, 10, 11] and m.singletons_ == []
    assert m.selection_.loc[m.selection_["k"] == 4, "smallest"].item() == 1


def test_an_unavoidable_single_listener_segment_is_named() -> None:
    X = _three_groups_and_one([30, 30], 0.1)  # so far away that every k leaves it alone
    m = ListenerSegmenter(k_range=(2, 5), stability_seeds=1).fit(X)
    assert (m.selection_["smallest"] == 1).all() and m.singletons_ == [int(np.argmin(np.bincount(m.labels_)))]
