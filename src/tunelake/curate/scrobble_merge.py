"""Scrobbles that are playbacks the lake already holds (or that a new Spotify row now holds): the overlap rule of
`curate.overlap`, extended to scrobbles.

A scrobble S (ListenBrainz, Last.fm, Maloja) and a Spotify row E (extended history, Web API, account data) of the
same listener are one playback when they name the same track (equal normalised artist + track, or the same
resolved track id) and they STARTED within the tolerance of each other: a scrobble's time is the track's start
(the services define it so), E's start is `ended_at − ms_played` (account data: to the minute; a Web API row
knows its end and the track's length, not what was played, so its start lies between end − length and
end − min(length / 2, 4 min), the least a scrobbled play lasts). Comparing starts is comparing ends of two views
of one playback, without needing the scrobble's unknown length. E must be a stream
(`ms_played ≥ 30 s`, API rows always): a scrobbler never scrobbles less. The Spotify row is kept (it has
`ms_played`); the scrobble goes and the pair counts once, as `merged` for whichever batch is new.

A scrobble that knows only its end (ListenBrainz's own Spotify connector writes Spotify's time of the end) is
matched by its end instead, to E's end.

Two scrobbles are one listen when they are the same track in the same second (the same scrobbler sent it to two
services: a different name spelling with the same recording MBID still matches), or in the same minute when one
side only has minutes (the lastfm-to-csv dates). The stored one is kept. A re-import, in any order, adds nothing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunelake.curate import overlap
from tunelake.sources import names
from tunelake.sources.types import SCROBBLE_SOURCES

STREAM_MS = 30_000  # the shortest playback a scrobbler scrobbles (Last.fm: tracks under 30 s are never scrobbled)


def _pairs_scrobbles(kept: pa.Table, scr: np.ndarray, keys: list[str]) -> list[tuple[int, int]]:
    """(kept, dropped) pairs of scrobble rows that are one listen; only pairs with an incoming dropped row."""
    t = pc.cast(pc.coalesce(kept["listened_at"], kept["ended_at"]), pa.int64()).to_numpy(zero_copy_only=False)
    prec = kept["ts_precision"].to_pylist()
    pri = kept["_pri"].to_numpy()
    mb = kept["recording_mbid"].to_pylist()
    batch = kept["batch_id"].to_pylist()
    rec = kept["record_no"].to_pylist()
    order = sorted(scr.tolist(), key=lambda i: (pri[i], prec[i] != "s", batch[i] or "", rec[i] or 0))
    first: dict[tuple, int] = {}  # probe → the row kept for it
    minute_matched: set[int] = set()  # a match at minute level pairs a row once
    out: list[tuple[int, int]] = []
    for i in order:  # the first of each listen (stored, then second precision, then batch order) is kept
        second, minute = int(t[i]) // 1000, int(t[i]) // 60_000
        if prec[i] == "min":
            own = [("mm", minute, keys[i])]
            look = [("ms", minute, keys[i]), ("mm", minute, keys[i])]
        else:
            own = [("s", second, keys[i]), ("ms", minute, keys[i])] + ([("b", second, mb[i])] if mb[i] else [])
            look = [("s", second, keys[i]), ("mm", minute, keys[i])] + ([("b", second, mb[i])] if mb[i] else [])
        hit = None
        for p in look:
            j = first.get(p)
            if j is not None and not (p[0] in ("ms", "mm") and j in minute_matched):
                hit = (j, p[0])
                break
        if hit is not None and pri[i] == 1:
            out.append((hit[0], i))
            if hit[1] in ("ms", "mm"):
                minute_matched.add(hit[0])
            continue
        for p in own:
            first.setdefault(p, i)
    return out


def _inputs(idx: np.ndarray, t: np.ndarray, keys: list[str], tid: pa.Array, w: np.ndarray | None = None
            ) -> pa.Table:
    n = len(idx)
    table = pa.table({"idx": pa.array(idx, pa.int64()), "t": pa.array(t, pa.int64()),
                      "ms": pa.nulls(n, pa.int64()), "ctype": pa.array(["track"] * n),
                      "k": pa.array([keys[i] for i in idx], pa.string()), "tid": tid.take(pa.array(idx))})
    return table if w is None else table.append_column("w", pa.array(w[idx], pa.int64()))


def merge_scrobbles(kept: pa.Table, tolerance_s: float, repl: set[int]
                    ) -> tuple[pa.Table, dict[str, int], int, set[int]]:
    """Drop the scrobble of every pair that is one playback → (rows, merged by batch, stored scrobbles replaced by
    an incoming Spotify row, indexes in the returned rows of incoming rows that replaced a stored row)."""
    src = kept["source"]
    is_scr = pc.fill_null(pc.is_in(src, pa.array(SCROBBLE_SOURCES)), False).to_numpy(zero_copy_only=False)
    pri = kept["_pri"].to_numpy()
    if not is_scr.any() or not (pri == 1).any():
        return kept, {}, 0, repl
    keys = names.keys_of(kept["artist_name"].to_pylist(), kept["track_name"].to_pylist())
    idx = np.arange(kept.num_rows)
    batch = kept["batch_id"].to_pylist()
    merged_by: dict[str, int] = {}
    drop: set[int] = set()
    replacing: set[int] = set()

    for _, d in _pairs_scrobbles(kept, idx[is_scr], keys):
        drop.add(d)
        merged_by[batch[d]] = merged_by.get(batch[d], 0) + 1

    ctype = pc.fill_null(pc.equal(kept["content_type"], "track"), False).to_numpy(zero_copy_only=False)
    ms = pc.fill_null(kept["ms_played"], -1).to_numpy(zero_copy_only=False)
    ended = pc.cast(kept["ended_at"], pa.int64()).to_numpy(zero_copy_only=False)
    start = ended - np.maximum(ms, 0)
    has_start = pc.is_valid(kept["listened_at"]).to_numpy(zero_copy_only=False)
    listened = pc.cast(kept["listened_at"], pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    prec = np.array(kept["ts_precision"].to_pylist(), dtype=object)
    src_np = np.array(src.to_pylist(), dtype=object)
    stream = ctype & ~is_scr & ((ms >= STREAM_MS) | (src_np == "api"))
    exact = stream & (src_np == "extended")
    api = stream & (src_np == "api")
    account = stream & (src_np == "account")
    # An API row knows its end and the track's length (its ms_played), not how much was played; a scrobbled play
    # lasted at least half the track or 4 minutes, so it started between end − length and end − min(length/2, 4 min).
    api_w = np.maximum(np.maximum(ms, 0) - np.minimum(np.maximum(ms, 0) // 2, 240_000), 0)
    tid = kept["track_id"]  # null ids never join (NULL = NULL is not true)
    used: set[int] = set()

    def run(a_mask: np.ndarray, a_t: np.ndarray, e_mask: np.ndarray, e_t: np.ndarray, tol: float,
            window: int, scrobble_is_a: bool, a_w: np.ndarray | None = None) -> None:
        a = idx[a_mask & ~np.isin(idx, list(drop | used))]
        e = idx[e_mask & ~np.isin(idx, list(drop | used))]
        if not len(a) or not len(e):
            return
        pairs = overlap.find_pairs(_inputs(a, a_t[a], keys, tid, a_w), _inputs(e, e_t[e], keys, tid), tol,
                                   ms_tolerance=None, window_ms=window)
        for ai, ei in pairs:
            s, o = (ai, ei) if scrobble_is_a else (ei, ai)
            if pri[s] == 1:
                merged_by[batch[s]] = merged_by.get(batch[s], 0) + 1
            elif pri[o] == 1:
                merged_by[batch[o]] = merged_by.get(batch[o], 0) + 1
                replacing.add(o)
            else:
                continue  # settled when the later of the two arrived
            drop.add(s)
            used.add(o)

    live = is_scr & ~np.isin(idx, list(drop))
    ends_only = live & ~has_start  # the start is unknown (ListenBrainz's Spotify connector): matched by its end
    live = live & has_start
    sec, mnt = live & (prec == "s"), live & (prec == "min")
    run(ends_only, ended, exact | api, ended, tolerance_s, overlap.API_WINDOW_MS, True)
    run(account, ended, ends_only, ended, tolerance_s, overlap.ACCOUNT_WINDOW_MS, False)
    run(sec, listened, exact, start, tolerance_s, overlap.API_WINDOW_MS, True)
    run(mnt, listened, exact, start, tolerance_s, overlap.ACCOUNT_WINDOW_MS, True)
    run(api, start, sec, listened, tolerance_s, 0, False, api_w)
    run(api, start, mnt, listened + 30_000, tolerance_s + 30, 0, False, api_w)
    # Account data knows its end to the minute, so its start too: it is the windowed side.
    run(account, start, sec, listened, tolerance_s, overlap.ACCOUNT_WINDOW_MS, False)
    run(account, start, mnt, listened + 30_000, tolerance_s + 30, overlap.ACCOUNT_WINDOW_MS, False)

    if not drop:
        return kept, merged_by, 0, repl
    replaced = len(replacing)
    keep = np.ones(kept.num_rows, bool)
    keep[list(drop)] = False
    new_index = np.cumsum(keep) - 1
    out = {int(new_index[i]) for i in repl if keep[i]} | {int(new_index[o]) for o in replacing}
    return kept.filter(pa.array(keep)), merged_by, replaced, out
