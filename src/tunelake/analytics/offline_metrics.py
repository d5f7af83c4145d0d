"""Offline recommendation metrics, per listener, and bootstrap confidence intervals over listeners.

Per listener (binary relevance; ``rel`` = the tracks the listener first plays in the scored period):

* precision@k = hits ÷ k; recall@k = hits ÷ |rel|;
* NDCG@k = Σ over hits of 1/log2(rank + 1) ÷ the ideal DCG of min(|rel|, k) hits;
* AP@k = Σ over hits of precision@rank ÷ min(|rel|, k) (its mean over listeners is MAP@k);
* intra-list diversity = the share of pairs of recommended tracks by different artists (1 = ten artists).

Over a method's lists: coverage = distinct recommended tracks ÷ tracks in the catalogue; novelty = mean
−log2((listeners + 1) ÷ (users + 1)) of the recommended tracks, with the listeners of the fitting data.

Confidence intervals are percentile bootstraps over listeners: the evaluated listeners are resampled with
replacement and the mean recomputed. One resampling (the same listener indices) serves every method, so the
interval of a *difference* between two methods is paired, listener by listener.
"""

from __future__ import annotations

import numpy as np


def per_listener(recommended: np.ndarray, relevant: dict[int, set[int]], rows: np.ndarray,
                 k: int) -> dict[str, np.ndarray]:
    """precision, recall, ndcg and ap at ``k`` for each of ``rows`` (``recommended`` aligned with them; -1 entries
    are empty slots)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    out = {m: np.zeros(len(rows)) for m in ("precision", "recall", "ndcg", "ap")}
    for j, (row, items) in enumerate(zip(rows, recommended, strict=True)):
        rel = relevant[int(row)]
        hits = np.array([int(i) in rel for i in items[:k]], dtype=float)
        ideal = min(len(rel), k)
        out["precision"][j] = hits.sum() / k
        out["recall"][j] = hits.sum() / len(rel)
        out["ndcg"][j] = float((hits * discounts[:len(hits)]).sum()) / float(discounts[:ideal].sum())
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        out["ap"][j] = float((precision_at * hits).sum()) / ideal
    return out


def intra_list_diversity(recommended: np.ndarray, artist_of: np.ndarray) -> np.ndarray:
    """Per list: the share of pairs of recommended tracks whose artists differ (nan for a list under 2 tracks)."""
    out = np.full(len(recommended), np.nan)
    for j, items in enumerate(recommended):
        arts = artist_of[items[items >= 0]]
        n = len(arts)
        if n < 2:
            continue
        _, same = np.unique(arts, return_counts=True)
        out[j] = 1.0 - float((same * (same - 1)).sum()) / (n * (n - 1))
    return out


def coverage_novelty(recommended: np.ndarray, listeners: np.ndarray, n_users: int,
                     n_tracks: int) -> tuple[float | None, float | None]:
    """Catalogue coverage and mean novelty (bits) of a method's lists; None when it recommended nothing."""
    shown = recommended[recommended >= 0]
    if len(shown) == 0:
        return None, None
    coverage = len(np.unique(shown)) / max(n_tracks, 1)
    novelty = float(np.mean(-np.log2((listeners[shown] + 1.0) / (n_users + 1.0))))
    return coverage, novelty


def resamples(n: int, rounds: int, seed: int = 0) -> np.ndarray:
    """``rounds`` × ``n`` listener indices drawn with replacement: one bootstrap, shared by every method."""
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n)) if n else np.zeros((rounds, 0), int)


def bootstrap_ci(values: np.ndarray, idx: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile interval of the mean of ``values`` over the resamples ``idx``; (None, None) without values."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return None, None
    means = values[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)
