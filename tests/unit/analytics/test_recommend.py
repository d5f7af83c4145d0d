"""Recommenders, ranking metrics and user features on hand-made data."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from tunelake.analytics.evaluate import ranking_metrics
from tunelake.analytics.features import FEATURE_NAMES, compute_features
from tunelake.analytics.recommend import (
    ALSRecommender,
    ContentRecommender,
    Interactions,
    PopularityRecommender,
    SegmentRecommender,
    make_recommender,
    recommendations_frame,
)
from tunelake.errors import InputError

from .conftest import ALICE, BOB


def test_ranking_metrics_hand_case() -> None:
    recs = np.array([[5, 1, 7], [2, 3, -1]])
    rel = {0: {1, 9}, 1: {2}}
    m = ranking_metrics(recs, rel, np.array([0, 1]), k=3)
    assert m["precision_at_k"] == pytest.approx(1 / 3)  # one hit in each list of 3
    assert m["recall_at_k"] == pytest.approx((1 / 2 + 1) / 2)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # hit at rank 2; ideal has both relevant on top
    assert m["ndcg_at_k"] == pytest.approx((ndcg0 + 1.0) / 2)


def tiny_interactions() -> Interactions:
    # users 0..3 × tracks t0..t4; listeners per track 3, 2, 1, 1, 1
    dense = np.array([[3, 1, 0, 0, 0],
                      [1, 0, 2, 0, 0],
                      [1, 1, 0, 1, 0],
                      [0, 0, 0, 0, 5]], dtype=np.float32)
    tracks = pd.DataFrame({
        "track_id": [f"t{i}" for i in range(5)], "track_name": [f"Track {i}" for i in range(5)],
        "artist_id": ["a"] * 5, "artist_name": ["A"] * 5, "primary_genre": ["rock", "rock", "jazz", "jazz", "pop"],
        "popularity": [50] * 5, "has_audio_features": [False] * 5,
        **{c: [np.nan] * 5 for c in ("danceability", "energy", "valence", "acousticness", "instrumentalness",
                                     "speechiness", "tempo")},
    })
    segs = pd.DataFrame({"user_key": [10, 11, 12, 13], "segment": [0, 1, 0, 1],
                         "segment_name": ["Rockers", "Mixed", "Rockers", "Mixed"]})
    return Interactions(np.array([10, 11, 12, 13]), tracks["track_id"].to_numpy(), sparse.csr_matrix(dense),
                        tracks, segs)


def test_popularity_excludes_played_and_ranks_by_listeners() -> None:
    rec = PopularityRecommender().fit(tiny_interactions())
    out = rec.recommend(np.array([3, 0]), n=4)
    assert list(out.items[0]) == [0, 1, 2, 3]  # listeners 3, 2, then t2 (2 plays) before t3 (1 play)
    assert list(out.items[1][:3]) == [4, 2, 3] and out.items[1][3] == -1  # only 3 unplayed tracks for user 0
    assert out.reasons[0][0] == "Popular: 3 listeners play it"


def test_segment_recommender() -> None:
    data = tiny_interactions()
    rec = SegmentRecommender().fit(data)
    out = rec.recommend(np.array([0]), n=1)
    assert out.items[0][0] == 3  # user 0's segment (users 0, 2) plays t3; user 0 has not
    assert out.reasons[0][0] == "Popular in your segment “Rockers”: 1 of 2 listeners play it"
    with pytest.raises(InputError, match="segment"):
        SegmentRecommender().fit(Interactions(data.user_keys, data.track_ids, data.plays, data.tracks, None))


def test_content_recommender_follows_genre_mix() -> None:
    rec = ContentRecommender().fit(tiny_interactions())
    out = rec.recommend(np.array([2]), n=2)
    assert out.items[0][0] == 2  # user 2 plays rock ⅔ and jazz ⅓; the unplayed jazz track beats pop
    assert out.reasons[0][0].startswith("You play a lot of jazz (33% of your plays)")


def block_interactions() -> Interactions:
    """Two taste communities of 10 users over 10 tracks each; user 0 has not played track 9 of its community."""
    dense = np.zeros((20, 20), dtype=np.float32)
    dense[:10, :10] = 3
    dense[10:, 10:] = 3
    dense[0, 9] = 0
    tracks = tiny_interactions().tracks.sample(20, replace=True, random_state=0).reset_index(drop=True)
    tracks["track_id"] = [f"t{i}" for i in range(20)]
    tracks["track_name"] = [f"Track {i}" for i in range(20)]
    return Interactions(np.arange(100, 120), tracks["track_id"].to_numpy(), sparse.csr_matrix(dense), tracks)


@pytest.mark.parametrize("backend", ["numpy", "implicit"])
def test_als_recommends_the_communitys_missing_track(backend: str) -> None:
    if backend == "implicit":
        try:
            import implicit  # noqa: F401
        except ImportError:
            if os.environ.get("CI") == "true":
                raise
            pytest.skip("implicit is not installed")
    rec = ALSRecommender(factors=4, regularization=0.1, iterations=10, backend=backend).fit(block_interactions())
    assert rec.backend_ == backend
    out = rec.recommend(np.array([0]), n=3)
    assert out.items[0][0] == 9
    assert out.reasons[0][0].startswith("Listeners who play “Track ")
    frame = recommendations_frame(rec, out, np.array([0]))
    assert list(frame["rank"]) == [1, 2, 3] and frame["user_key"].iloc[0] == 100 and frame["track_id"][0] == "t9"


def test_unknown_method() -> None:
    with pytest.raises(InputError, match="unknown recommendation method"):
        make_recommender("magic")


def test_features_on_tiny_warehouse(tiny_con) -> None:
    f = compute_features(tiny_con).set_index("user_key")
    assert list(f.columns) == FEATURE_NAMES and len(FEATURE_NAMES) >= 20
    assert not f.isna().any().any()
    a = f.loc[ALICE]
    assert a["log_plays"] == pytest.approx(math.log(9))
    assert a["plays_per_active_day"] == pytest.approx(8 / 5)
    assert a["active_day_share"] == pytest.approx(5 / 32)  # 1 Jan … 1 Feb
    assert (a["morning_share"], a["night_share"], a["weekend_share"]) == (1.0, 0.0, 0.0)
    assert a["sessions_per_active_day"] == pytest.approx(6 / 5)
    assert a["skip_rate"] == pytest.approx(1 / 8) and a["completion_mean"] == pytest.approx(6.75 / 8)
    assert a["artist_entropy"] == pytest.approx(1.75)
    assert a["repeat_rate"] == pytest.approx(3 / 8)
    assert a["discovery_rate"] == pytest.approx(0.5)  # February only: t5's artist is new, t3's is not
    assert a["mainstreamness"] == pytest.approx(400 / 7) and a["popularity_missing"] == pytest.approx(1 / 8)
    assert a["release_year_mean"] == pytest.approx((4 * 1995 + 2 * 1972 + 2001) / 7)
    assert a["energy"] == pytest.approx(0.56) and a["audio_missing"] == pytest.approx(3 / 8)
    assert (a["mobile_share"], a["web_share"], a["podcast_share"]) == (1.0, 0.0, 0.0)
    b = f.loc[BOB]
    assert (b["web_share"], b["mobile_share"], b["artist_entropy"]) == (1.0, 0.0, 0.0)
    assert b["danceability"] == 0.0  # nobody has danceability: imputed with 0


def test_candidates_limit_what_any_recommender_offers() -> None:
    data = tiny_interactions()
    data.candidates = np.array([True, True, False, True, False])  # t2 and t4: unknown at fitting time
    for rec in (PopularityRecommender(), ContentRecommender(), SegmentRecommender()):
        items = rec.fit(data).recommend(np.arange(4), n=5).items
        assert not np.isin(items, [2, 4]).any(), rec.name
    out = PopularityRecommender().fit(data).recommend(np.array([3]), n=5)  # user 3 played only t4
    assert list(out.items[0]) == [0, 1, 3, -1, -1]


def test_als_never_offers_a_track_nobody_played() -> None:
    data = block_interactions()
    wide = sparse.hstack([data.plays, sparse.csr_matrix((20, 1), dtype=np.float32)]).tocsr()  # column 20: unplayed
    tracks = pd.concat([data.tracks, data.tracks.tail(1).assign(track_id="t20")], ignore_index=True)
    rec = ALSRecommender(factors=4, regularization=0.1, iterations=10, backend="numpy").fit(
        Interactions(data.user_keys, tracks["track_id"].to_numpy(), wide, tracks))
    assert list(rec.active_) == list(range(20))
    items = rec.recommend(np.arange(20), n=12).items
    assert not (items == 20).any() and items[0][0] == 9


def test_recommendations_without_reasons_are_the_same_items_and_leave_the_model_as_it_was():
    """The evaluation asks for items only (`reasons=False`): the same items and scores as with reasons, and the
    in-place masking of a batch's scores never writes into what the model keeps (a popularity row is a broadcast
    view of one vector)."""
    from tunelake.analytics.recommend import ALSRecommender, PopularityRecommender

    data = tiny_interactions()
    for rec in (PopularityRecommender().fit(data), ALSRecommender(factors=4, iterations=3).fit(data)):
        rows = np.arange(len(data.user_keys))
        before = rec.score(rows).copy()
        full = rec.recommend(rows, n=3)
        bare = rec.recommend(rows, n=3, reasons=False)
        assert (full.items == bare.items).all() and np.allclose(full.scores, bare.scores)
        assert any(r for rs in full.reasons for r in rs) and not any(r for rs in bare.reasons for r in rs)
        assert np.array_equal(rec.score(rows), before)


def test_batches_scored_on_threads_give_what_one_thread_gives():
    from tunelake.analytics.recommend import ALSRecommender, PopularityRecommender

    data = tiny_interactions()
    rows = np.arange(len(data.user_keys))
    for rec in (PopularityRecommender().fit(data), ALSRecommender(factors=4, iterations=3).fit(data)):
        one = rec.recommend(rows, n=3, batch=2, reasons=False)
        two = rec.recommend(rows, n=3, batch=2, reasons=False, threads=2)  # one-row batches on two threads
        assert one.items.shape == (len(rows), 3)
        # the same items; ALS's float32 scores may differ in the last bit, as BLAS rounds a 1-row product and a
        # 2-row one differently (so did the last, shorter batch of any recommend call before batches had threads)
        assert (one.items == two.items).all() and np.allclose(one.scores, two.scores, rtol=1e-6, atol=0)
    assert rec.recommend(rows[:0], n=3, threads=2).items.shape == (0, 3)


def test_interactions_numbered_in_duckdb_equal_the_frame_of_counts(tiny_con) -> None:
    from tunelake.analytics.recommend import interactions_from_counts, load_interactions, load_tracks

    tiny_con.execute("CREATE OR REPLACE TEMP TABLE fact_play AS SELECT * FROM main.fact_play UNION ALL "
                     "(SELECT * REPLACE (424242 AS user_key, 'not-a-track' AS track_id) FROM main.fact_play LIMIT 1)")
    try:
        got = load_interactions(tiny_con)
        counts = tiny_con.execute("SELECT user_key, track_id, count(*) AS plays FROM fact_play GROUP BY 1, 2").df()
        want = interactions_from_counts(counts, load_tracks(tiny_con))
    finally:
        tiny_con.execute("DROP TABLE temp.fact_play")
    assert list(got.user_keys) == list(want.user_keys) and 424242 in got.row_of  # a row, if an empty one
    assert got.plays[got.row_of[424242]].nnz == 0 and got.plays.nnz > 0
    assert list(got.track_ids) == list(want.track_ids)
    assert len(got.user_keys) == 3 and got.plays.dtype == want.plays.dtype == np.float32
    assert (got.plays != want.plays).nnz == 0
