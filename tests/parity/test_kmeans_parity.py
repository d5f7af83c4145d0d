"""Spark MLlib K-means and the scikit-learn segmenter find the same listener segments on planted data.

Listeners are drawn around four planted behaviour profiles (night owls who skip, daytime album listeners, …) in the
real feature space, with overlapping noise; both paths scale the features the same way, and their segmentations
must agree with each other (ARI ≥ 0.9) and with the plant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

pytestmark = pytest.mark.spark


def planted_features(n_per: int = 60, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    from tunelake.analytics.features import FEATURE_NAMES

    rng = np.random.default_rng(seed)
    names = list(FEATURE_NAMES)
    base = rng.uniform(0.2, 0.8, size=len(names))
    profiles = []
    for _ in range(4):  # each profile moves 6 random features by ±0.25
        p = base.copy()
        idx = rng.choice(len(names), 6, replace=False)
        p[idx] += rng.choice([-0.25, 0.25], size=6)
        profiles.append(p)
    sizes = [n_per * 2, n_per, n_per, n_per // 2]  # unequal segments, as real populations are
    rows, truth = [], []
    for label, (p, size) in enumerate(zip(profiles, sizes, strict=True)):
        rows.append(p + rng.normal(0, 0.06, size=(size, len(names))))
        truth += [label] * size
    frame = pd.DataFrame(np.vstack(rows), columns=names)
    frame.insert(0, "user_key", rng.permutation(len(frame)).astype("int64") + 1000)
    return frame, np.array(truth), names


def test_spark_kmeans_agrees_with_scikit_learn(spark_session):
    from tunelake.analytics.segments import ListenerSegmenter
    from tunelake.analytics.segments_spark import fit_spark_segments

    features, truth, names = planted_features()
    sk = ListenerSegmenter(k="auto", k_range=(3, 5), random_state=0, stability_seeds=0).fit(features[names])
    sp = fit_spark_segments(features, names, k="auto", k_range=(3, 5), seed=0, n_init=3, spark=spark_session)

    assert sk.k_ == sp.k == 4
    assert adjusted_rand_score(sk.labels_, sp.labels) >= 0.9
    assert adjusted_rand_score(truth, sp.labels) >= 0.9
    # Both number segments by size: the largest planted profile is segment 0 on both sides.
    assert np.bincount(sp.labels)[0] == np.bincount(sk.labels_)[0] == 120
    # The same centres, in the same scaled units.
    assert np.allclose(np.sort(sp.centers_z.to_numpy().ravel()), np.sort(sk.cluster_centers_.ravel()), atol=0.05)


def test_spark_kmeans_at_a_fixed_k(spark_session):
    from tunelake.analytics.segments import ListenerSegmenter
    from tunelake.analytics.segments_spark import fit_spark_segments

    features, _, names = planted_features(n_per=40, seed=9)
    sk = ListenerSegmenter(k=4, random_state=1, stability_seeds=0).fit(features[names])
    sp = fit_spark_segments(features, names, k=4, seed=1, n_init=3, spark=spark_session)
    assert list(sp.selection["k"]) == [4]
    assert adjusted_rand_score(sk.labels_, sp.labels) >= 0.9


def test_bad_k_is_an_input_error(spark_session):
    from tunelake.analytics.segments_spark import fit_spark_segments
    from tunelake.errors import InputError

    features, _, names = planted_features(n_per=4)
    with pytest.raises(InputError):
        fit_spark_segments(features, names, k=0, spark=spark_session)


def test_spark_segmenter_is_a_drop_in_for_the_analytics_step(spark_session):
    """The analytics step's tables come out of the Spark segmenter exactly as out of the scikit-learn one."""
    from tunelake.analytics.segments import ListenerSegmenter, segment_tables
    from tunelake.analytics.segments_spark import spark_segmenter

    features, truth, names = planted_features(n_per=40, seed=5)
    assert len(set(truth)) == 4
    sk = ListenerSegmenter(k=4, random_state=0, stability_seeds=1).fit(features[names])
    sp = spark_segmenter(spark=spark_session, k=4, random_state=0, n_init=2, stability_seeds=1).fit(features[names])
    assert sp.k_ == sk.k_ == 4
    assert adjusted_rand_score(sk.labels_, sp.labels_) >= 0.9
    assert list(sp.selection_.columns) == list(sk.selection_.columns)
    assert list(sp.selection_["k"]) == [4] and sp.selection_["chosen"].all()
    assert sp.silhouette_ == pytest.approx(sk.silhouette_, abs=0.02)
    assert sp.stability_ >= 0.9
    assert sorted(sp.names_) == sorted(sk.names_)
    assert (sp.predict(features[names]) == sp.labels_).all()
    seg_sp, prof_sp = segment_tables(features, sp, names)
    seg_sk, prof_sk = segment_tables(features, sk, names)
    assert list(seg_sp.columns) == list(seg_sk.columns) and len(seg_sp) == len(seg_sk)
    assert list(prof_sp.columns) == list(prof_sk.columns) and len(prof_sp) == len(prof_sk)


def test_pipeline_segments_step_uses_mllib_on_the_spark_engine(spark_session):
    """run_segments with engine='spark' fits in MLlib and writes the same segment tables as the scikit-learn path."""
    import duckdb

    from tunelake.analytics.steps import run_segments

    features, _truth, _ = planted_features()
    out = {}
    for engine in ("duckdb", "spark"):
        con = duckdb.connect()
        info, _segments = run_segments(con, features, f"run-{engine}", k="auto", engine=engine)
        stored = con.execute("SELECT user_key, segment FROM user_segment ORDER BY user_key").df()
        assert len(stored) == len(features) and info["k"] == 4
        out[engine] = stored["segment"].to_numpy()
        con.close()
    assert adjusted_rand_score(out["duckdb"], out["spark"]) >= 0.9
