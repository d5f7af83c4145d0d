"""Track recommendations: popularity, segment, content and collaborative-filtering (implicit ALS) recommenders.

All recommenders share one shape: ``fit(data)`` on an ``Interactions`` matrix (listeners × tracks, play counts),
then ``recommend(users, n)`` returning, per user, tracks the user has *not* played with a score and a reason.
They never recommend a track the user already played: the evaluation (evaluate.py) counts as relevant only
tracks a user plays for the first time, so re-recommending favourites would be both useless and unscorable.

Collaborative filtering is Hu, Koren & Volinsky's implicit-feedback ALS (confidence 1 + α·ln(1 + plays/ε)).
It uses the ``implicit`` package when installed and a small closed-form numpy ALS otherwise (same model).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy import sparse

from tunelake.errors import InputError

METHODS = ("popularity", "segment", "content", "als")
AUDIO = ("danceability", "energy", "valence", "acousticness", "instrumentalness", "speechiness", "tempo")


@dataclass
class Interactions:
    """Play counts of listeners × tracks, with the track metadata the recommenders need."""

    user_keys: np.ndarray  # row → user_key
    track_ids: np.ndarray  # column → track_id
    plays: sparse.csr_matrix  # float32 play counts
    tracks: pd.DataFrame  # one row per column: track_name, artist_name, primary_genre, popularity, audio features
    segments: pd.DataFrame | None = None  # user_key, segment, segment_name (rows aligned with user_keys)
    row_of: dict[int, int] = field(default_factory=dict)
    # Columns a recommender may return (None = all). The evaluation limits them to tracks known when the model is
    # fitted — in a catalogue file or played by someone in the fitting data — because dim_track also holds tracks
    # known only from the very plays being predicted, and offering those would leak the answer.
    candidates: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.row_of = {int(u): i for i, u in enumerate(self.user_keys)}


def load_tracks(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every track of dim_track with what the recommenders use, in track_id order (the matrix columns)."""
    return con.execute(f"""SELECT track_id, track_name, artist_id, artist_name, primary_genre, popularity,
                                  has_audio_features, coalesce(in_catalog, false) AS in_catalog, {', '.join(AUDIO)}
                           FROM dim_track ORDER BY track_id""").df()


def interactions_from_counts(counts: pd.DataFrame, tracks: pd.DataFrame, segments: pd.DataFrame | None = None,
                             users: np.ndarray | None = None) -> Interactions:
    """An ``Interactions`` matrix from (user_key, track_id, plays) rows over the columns of ``tracks``.

    ``users`` fixes the rows (a listener with no row in ``counts`` gets an empty row), so the matrices of one
    evaluation — fitted on different cut-offs — share one row numbering."""
    if users is None:
        users = np.unique(counts["user_key"].to_numpy(np.int64))
    col_of = pd.Series(np.arange(len(tracks)), index=tracks["track_id"])
    counts = counts[counts["track_id"].isin(col_of.index)]
    return _interactions(counts["user_key"].to_numpy(np.int64), col_of[counts["track_id"]].to_numpy(),
                         counts["plays"].to_numpy(np.float32), tracks, segments, users)


def _interactions(user_key: np.ndarray, col: np.ndarray, plays: np.ndarray, tracks: pd.DataFrame,
                  segments: pd.DataFrame | None, users: np.ndarray) -> Interactions:
    """The matrix of (user_key, column, plays) rows over the rows of ``users`` (sorted; rows of other listeners are
    left out); see `interactions_from_counts`."""
    if len(users) == 0:
        raise InputError("no plays to learn recommendations from", field="fact_play",
                         hint="import listening history and run `tunelake build`")
    pos = np.searchsorted(users, user_key)
    known = (pos < len(users)) & (users[np.minimum(pos, len(users) - 1)] == user_key)
    mat = sparse.csr_matrix((plays[known], (pos[known], col[known])), shape=(len(users), len(tracks)))
    mat.sum_duplicates()
    seg = None
    if segments is not None:
        seg = pd.DataFrame({"user_key": users}).merge(segments[["user_key", "segment", "segment_name"]],
                                                      on="user_key", how="left")
        seg["segment"] = seg["segment"].fillna(-1).astype(int)
        seg["segment_name"] = seg["segment_name"].fillna("unsegmented")
    return Interactions(users, tracks["track_id"].to_numpy(), mat, tracks.reset_index(drop=True), seg)


def load_interactions(con: duckdb.DuckDBPyConnection, before: date | None = None,
                      segments: pd.DataFrame | None = None) -> Interactions:
    """Play counts from fact_play (only plays on local days before ``before`` when given) over every track in
    dim_track, so content-based recommendations can reach catalogue tracks nobody has played yet."""
    cond = f"WHERE date_key < {before.year * 10000 + before.month * 100 + before.day}" if before else ""
    # Columns numbered in DuckDB (the order of load_tracks): at 100M plays the (listener, track) counts are tens of
    # millions of rows, which as a frame of track_id strings would take gigabytes.
    rows = con.execute(f"""WITH t AS (SELECT track_id, CAST(row_number() OVER (ORDER BY track_id) - 1 AS INTEGER)
                                      AS col FROM dim_track)
                           SELECT f.user_key, t.col, CAST(count(*) AS FLOAT) AS plays
                           FROM (SELECT user_key, track_id FROM fact_play {cond}) f JOIN t USING (track_id)
                           GROUP BY 1, 2""").fetchnumpy()
    # every listener with a play gets a row, also one whose plays are all of tracks not in dim_track
    users = con.execute(f"SELECT DISTINCT user_key FROM fact_play {cond} ORDER BY 1").fetchnumpy()["user_key"]
    return _interactions(np.asarray(rows["user_key"], dtype=np.int64), np.asarray(rows["col"]),
                         np.asarray(rows["plays"]), load_tracks(con), segments, np.asarray(users, dtype=np.int64))


@dataclass
class Recs:
    """Recommendations for a list of users: ``items``/``scores`` are (users × n) arrays, -1 marks no item."""

    items: np.ndarray
    scores: np.ndarray
    reasons: list[list[str]]


def _top_n(scores: np.ndarray, seen: sparse.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` columns per row of a dense score matrix, excluding already-played items. ``scores`` is a writable
    float64 array the caller gives up: it is negated and masked in place (each copy of a 512-listener batch over a
    large catalogue is ~100 MB to write and read back)."""
    coo = seen.tocoo()
    np.negative(scores, out=scores)
    scores[coo.row, coo.col] = np.inf
    n = min(n, scores.shape[1])
    part = np.argpartition(scores, n - 1, axis=1)[:, :n]
    part_scores = -np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(part_scores, order, axis=1)
    items[~np.isfinite(top)] = -1
    return items, np.where(np.isfinite(top), top, 0.0)


class Recommender:
    name = "base"

    def fit(self, data: Interactions) -> Recommender:
        self.data_ = data
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows) × items) scores: a new array, or a read-only view; `recommend` writes into a writable one."""
        raise NotImplementedError

    def reason(self, row: int, item: int, score: float) -> str:
        return ""

    def recommend(self, rows: np.ndarray, n: int = 10, batch: int = 512, reasons: bool = True,
                  threads: int = 1) -> Recs:
        """The top ``n`` unplayed candidates of each row. ``reasons=False`` (the evaluation, which reads only the
        items) leaves out the sentence explaining each one. ``threads`` > 1 scores that many batches at once, each
        ``batch / threads`` rows (the same memory as one batch): the scoring and the top-n selection are NumPy and
        BLAS calls that release the GIL, ~40 % of an evaluation at 10M plays."""
        size = max(1, batch // max(1, threads))
        chunks = [rows[lo:lo + size] for lo in range(0, len(rows), size)]
        if threads > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tunelake-recommend") as pool:
                tops = list(pool.map(lambda chunk: self._top(chunk, n), chunks))
        else:
            tops = [self._top(chunk, n) for chunk in chunks]
        why: list[list[str]] = []
        for chunk, (items, scores) in zip(chunks, tops, strict=True):
            if reasons:
                for r, its, scs in zip(chunk, items, scores, strict=True):
                    why.append([self.reason(int(r), int(i), float(s)) if i >= 0 else "" for i, s in zip(its, scs,
                                                                                                     strict=True)])
            else:
                why += [[""] * items.shape[1] for _ in range(len(chunk))]
        if not tops:
            return Recs(np.empty((0, n), dtype=np.int64), np.empty((0, n)), why)
        return Recs(np.vstack([t[0] for t in tops]), np.vstack([t[1] for t in tops]), why)

    def _top(self, chunk: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.score(chunk)
        if not scores.flags.writeable or scores.dtype != np.float64:
            scores = scores.astype(np.float64)  # a broadcast view (popularity), or another dtype
        if self.data_.candidates is not None:
            scores[:, ~self.data_.candidates] = -np.inf
        return _top_n(scores, self.data_.plays[chunk], n)


class PopularityRecommender(Recommender):
    """Baseline: the tracks most listeners have played."""

    name = "popularity"

    def fit(self, data: Interactions) -> PopularityRecommender:
        super().fit(data)
        self.listeners_ = np.asarray((data.plays > 0).sum(axis=0)).ravel().astype(float)
        self.plays_ = np.asarray(data.plays.sum(axis=0)).ravel()
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        s = self.listeners_ + self.plays_ / (self.plays_.max() + 1.0)  # listeners, ties by plays
        return np.broadcast_to(s, (len(rows), len(s)))

    def reason(self, row: int, item: int, score: float) -> str:
        return f"Popular: {int(self.listeners_[item])} listeners play it"


class SegmentRecommender(Recommender):
    """What the listener's segment plays that the listener has not: the share of the segment playing each track."""

    name = "segment"

    def __init__(self, pop_weight: float = 1e-3) -> None:
        self.pop_weight = pop_weight  # weight of global popularity next to the segment's share (chosen on validation)

    def fit(self, data: Interactions) -> SegmentRecommender:
        super().fit(data)
        if data.segments is None:
            raise InputError("segment recommendations need segments", field="user_segment",
                             hint="run `tunelake segment` first")
        seg = data.segments["segment"].to_numpy()
        self.seg_ = seg
        labels = np.unique(seg)
        self.index_ = {s: i for i, s in enumerate(labels)}
        onehot = sparse.csr_matrix((np.ones(len(seg)), (np.arange(len(seg)), [self.index_[s] for s in seg])),
                                   shape=(len(seg), len(labels)))
        listened = (data.plays > 0).astype(np.float64)
        self.size_ = np.asarray(onehot.sum(axis=0)).ravel()
        self.seg_listeners_ = np.asarray((onehot.T @ listened).todense())
        plays = np.asarray((onehot.T @ data.plays).todense())
        self.share_ = self.seg_listeners_ / self.size_[:, None] + 1e-6 * plays / (plays.max() + 1.0)
        self.pop_ = np.asarray(listened.sum(axis=0)).ravel() / len(seg)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        idx = np.array([self.index_[self.seg_[r]] for r in rows])
        return self.share_[idx] + self.pop_weight * self.pop_  # at 1e-3 popularity only breaks ties

    def reason(self, row: int, item: int, score: float) -> str:
        s = self.index_[self.seg_[row]]
        name = self.data_.segments["segment_name"].iloc[row]
        return (f"Popular in your segment “{name}”: {int(self.seg_listeners_[s, item])} of "
                f"{int(self.size_[s])} listeners play it")


class ContentRecommender(Recommender):
    """Tracks like the ones the listener plays: genre affinity × audio-feature similarity × catalogue popularity.

    The user profile is the play-weighted genre mix and mean standardised audio features; a track scores its
    genre's share of the user's plays times (1 + cosine similarity of audio features) / 2, times √popularity
    (catalogue metadata, not other users' behaviour) so obscure near-duplicates do not crowd out known tracks."""

    name = "content"

    def __init__(self, pop_floor: float = 0.1, audio_weight: float = 1.0) -> None:
        # score = genre share × audio similarity^audio_weight × (pop_floor + √popularity); chosen on validation
        self.pop_floor, self.audio_weight = pop_floor, audio_weight

    def fit(self, data: Interactions) -> ContentRecommender:
        super().fit(data)
        t = data.tracks
        genres = t["primary_genre"].fillna("(unknown)")
        self.genre_names_ = np.array(sorted(genres.unique()))
        gidx = pd.Series(np.arange(len(self.genre_names_)), index=self.genre_names_)[genres].to_numpy()
        self.genre_of_ = gidx
        G = sparse.csr_matrix((np.ones(len(t)), (np.arange(len(t)), gidx)), shape=(len(t), len(self.genre_names_)))
        known = t["has_audio_features"].fillna(False).to_numpy(bool)
        A = t[list(AUDIO)].to_numpy(float)
        mu, sd = np.nanmean(A[known], axis=0) if known.any() else 0, np.nanstd(A[known], axis=0) if known.any() else 1
        A = np.nan_to_num((A - mu) / np.where(sd > 0, sd, 1.0))
        A[~known] = 0.0
        self.audio_ = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-9)
        self.known_ = known
        P = data.plays
        totals = np.maximum(np.asarray(P.sum(axis=1)).ravel(), 1.0)
        self.user_genre_ = np.asarray((P @ G).todense()) / totals[:, None]
        weights = P.multiply(known[None, :].astype(np.float32)).tocsr()
        ua = weights @ A
        self.user_audio_ = ua / np.maximum(np.linalg.norm(ua, axis=1, keepdims=True), 1e-9)
        pop = t["popularity"].to_numpy(float)
        self.pop_ = np.sqrt(np.nan_to_num(pop, nan=np.nanmean(pop) if np.isfinite(pop).any() else 50.0) / 100.0)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        genre = self.user_genre_[rows][:, self.genre_of_]
        audio = (1.0 + self.user_audio_[rows] @ self.audio_.T) / 2.0
        audio[:, ~self.known_] = 0.5
        return genre * audio ** self.audio_weight * (self.pop_floor + self.pop_)

    def reason(self, row: int, item: int, score: float) -> str:
        g = self.genre_names_[self.genre_of_[item]]
        share = self.user_genre_[row, self.genre_of_[item]]
        sim = float(self.user_audio_[row] @ self.audio_[item]) if self.known_[item] else None
        sound = f", and its sound is {'close to' if sim > 0.5 else 'near'} your usual" if sim is not None else ""
        return f"You play a lot of {g} ({share:.0%} of your plays){sound}"


def _als_numpy(C: sparse.csr_matrix, factors: int, reg: float, iterations: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form implicit ALS (Hu, Koren & Volinsky 2008) for when the `implicit` package is unavailable.

    C holds confidence − 1 for observed pairs (preference 1); unobserved pairs have confidence 1, preference 0."""
    rng = np.random.default_rng(seed)
    n_u, n_i = C.shape
    X = rng.normal(0, 0.01, (n_u, factors))
    Y = rng.normal(0, 0.01, (n_i, factors))
    Ct = C.T.tocsr()

    def solve(M: sparse.csr_matrix, F: np.ndarray, out: np.ndarray) -> None:
        FtF = F.T @ F + reg * np.eye(factors)
        for r in range(M.shape[0]):
            lo, hi = M.indptr[r], M.indptr[r + 1]
            if lo == hi:
                out[r] = 0.0
                continue
            idx, c = M.indices[lo:hi], M.data[lo:hi]
            Fi = F[idx]
            A = FtF + (Fi.T * c) @ Fi
            b = (Fi.T * (1.0 + c)).sum(axis=1)
            out[r] = np.linalg.solve(A, b)

    for _ in range(iterations):
        solve(C, Y, X)
        solve(Ct, X, Y)
    return X, Y


class ALSRecommender(Recommender):
    """Collaborative filtering: implicit-feedback matrix factorisation by alternating least squares."""

    name = "als"

    def __init__(self, factors: int = 16, regularization: float = 1.0, alpha: float = 1.0, iterations: int = 15,
                 random_state: int = 0, backend: str = "auto") -> None:
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.random_state, self.backend = iterations, random_state, backend

    def fit(self, data: Interactions) -> ALSRecommender:
        super().fit(data)
        # Only tracks someone played can be learnt: fitting the rest of a 40k-track catalogue costs most of the time
        # and gives them zero factors, so they are left out and never recommended by this method.
        self.active_ = np.flatnonzero(np.diff(data.plays.tocsc().indptr) > 0)
        conf = data.plays[:, self.active_].astype(np.float32)
        conf.data = (self.alpha * np.log1p(conf.data)).astype(np.float32)  # confidence − 1
        backend = self.backend
        if backend == "auto":
            try:
                import implicit  # noqa: F401
                backend = "implicit"
            except ImportError:
                backend = "numpy"
        if backend == "implicit":
            import os

            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            from implicit.cpu.als import AlternatingLeastSquares

            # implicit scales the matrix by alpha itself; pass confidence − 1 with alpha=1 to keep one definition.
            # Threads spin-wait: on small matrices (or busy cores) one thread is several times faster than two.
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=1.0,
                                            iterations=self.iterations, random_state=self.random_state,
                                            num_threads=1 if conf.nnz < 1_000_000 else 2)
            model.fit(conf, show_progress=False)
            X, Y = np.asarray(model.user_factors), np.asarray(model.item_factors)
        else:
            X, Y = _als_numpy(conf.tocsr(), self.factors, self.regularization, self.iterations, self.random_state)
        self.user_factors_ = X
        self.item_factors_ = np.zeros((data.plays.shape[1], Y.shape[1]), dtype=Y.dtype)
        self.item_factors_[self.active_] = Y
        self.backend_ = backend
        norms = np.linalg.norm(self.item_factors_, axis=1, keepdims=True)
        self.item_unit_ = self.item_factors_ / np.maximum(norms, 1e-9)
        return self

    def score(self, rows: np.ndarray) -> np.ndarray:
        out = np.full((len(rows), self.item_factors_.shape[0]), -np.inf)
        out[:, self.active_] = self.user_factors_[rows] @ self.item_factors_[self.active_].T
        return out

    def reason(self, row: int, item: int, score: float) -> str:
        P = self.data_.plays
        lo, hi = P.indptr[row], P.indptr[row + 1]
        idx, cnt = P.indices[lo:hi], P.data[lo:hi]
        if len(idx) == 0:
            return "Listeners with similar taste play it"
        top = idx[np.argsort(-cnt)[:50]]
        best = top[int(np.argmax(self.item_unit_[top] @ self.item_unit_[item]))]
        t = self.data_.tracks.iloc[best]
        return f"Listeners who play “{t['track_name']}” by {t['artist_name']} also play it"


def make_recommender(method: str, **params: Any) -> Recommender:
    """A recommender by name; ``params`` are its hyper-parameters (the evaluation picks them on validation)."""
    if method == "popularity":
        return PopularityRecommender()
    if method == "segment":
        return SegmentRecommender(**params)
    if method == "content":
        return ContentRecommender(**params)
    if method == "als":
        return ALSRecommender(**params)
    raise InputError(f"unknown recommendation method {method!r}", field="method", hint=f"one of {', '.join(METHODS)}")


def recommendations_frame(rec: Recommender, recs: Recs, rows: np.ndarray) -> pd.DataFrame:
    """Rows for the ``recommendations`` table (without run_id)."""
    out = []
    data = rec.data_
    for r, items, scores, reasons in zip(rows, recs.items, recs.scores, recs.reasons, strict=True):
        rank = 0
        for i, s, why in zip(items, scores, reasons, strict=True):
            if i < 0:
                continue
            rank += 1
            out.append({"user_key": int(data.user_keys[r]), "rank": rank, "track_id": str(data.track_ids[i]),
                        "score": float(s), "method": rec.name, "reason": why})
    return pd.DataFrame(out, columns=["user_key", "rank", "track_id", "score", "method", "reason"])


def recommend_for_user(con: duckdb.DuckDBPyConnection, user_key: int, n: int = 20,
                       method: str | None = None) -> pd.DataFrame:
    """Fresh recommendations for one listener from the whole history: rank, track_id, track_name, artist_name,
    score, method, reason. ``method`` None = the default chosen by the last evaluation (popularity if none ran);
    a method runs with the hyper-parameters that evaluation chose for it on validation."""
    import json

    from tunelake.analytics.insights import table_exists

    chosen: dict[str, dict[str, Any]] = {}
    default = "popularity"
    if table_exists(con, "rec_evaluation"):
        cols = {r[0] for r in con.execute("DESCRIBE rec_evaluation").fetchall()}
        rows = con.execute(f"SELECT method, is_default{', params' if 'params' in cols else ''} "
                           "FROM rec_evaluation").fetchall()
        for r in rows:
            chosen[r[0]] = json.loads(r[2]) if len(r) > 2 and r[2] else {}
            if r[1]:
                default = r[0]
    method = method or default
    if method == "segment" and not table_exists(con, "user_segment"):
        raise InputError("segment recommendations need segments", field="method", hint="run `tunelake segment` first")
    segs = con.execute("SELECT user_key, segment, segment_name FROM user_segment").df() \
        if table_exists(con, "user_segment") else None
    data = load_interactions(con, segments=segs)
    if user_key not in data.row_of:
        raise InputError(f"user {user_key} has no music plays", field="user", hint="pick a listener with plays")
    rec = make_recommender(method, **chosen.get(method, {})).fit(data)
    rows = np.array([data.row_of[user_key]])
    df = recommendations_frame(rec, rec.recommend(rows, n), rows)
    meta = data.tracks[["track_id", "track_name", "artist_name"]]
    return df.merge(meta, on="track_id", how="left")[
        ["rank", "track_id", "track_name", "artist_name", "score", "method", "reason"]]
