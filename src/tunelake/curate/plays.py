"""Curated plays: one Parquet partition per user, deduplicated by a deterministic playback id.

A playback's id is a hash of (user, end time, item, ms_played): the same playback found in two exports, or the
same export imported twice, gets the same id and is kept once. Rows already in the lake win over new ones, so a
re-import never changes what was there.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunelake.curate import overlap, resolve, scrobble_merge
from tunelake.duck import arrow_of, cursor
from tunelake.lake import zones
from tunelake.lake.store import Lake, parquet_bytes
from tunelake.sources import names
from tunelake.sources.types import NAME_ONLY_SOURCES, PLAYS, SCROBBLE_SOURCES, conform, play_id_sql

TABLE = "plays"

PLAY_ID_SQL = play_id_sql()

# How a user's partition is written. snappy: the partition is rewritten on every import of the user, and reading it
# back is on every build's path. No dictionary for columns whose values hardly repeat (the encoder would hash every
# value, then fall back to plain) and min/max statistics only where a reader can prune on them: both cut the write's
# CPU by a quarter (~2 % of an import) and the files by a tenth.
_UNIQUE_COLUMNS = {"play_id", "ended_at", "record_no", "ms_played", "offline_at"}
PARQUET_OPTIONS = {
    "compression": "snappy",
    "use_dictionary": [f.name for f in PLAYS if f.name not in _UNIQUE_COLUMNS],
    "write_statistics": ["user_key", "ended_at", "batch_id"],
}


@dataclass
class MergeResult:
    rows_before: int
    rows_after: int
    duplicates_by_batch: dict[str, int]
    merged_by_batch: dict[str, int] = field(default_factory=dict)
    replaced: int = 0  # existing account rows replaced by an incoming extended/API row of the same playback
    upgraded: int = 0  # existing account rows whose surrogate track id was resolved to a Spotify id
    excluded_by_batch: dict[str, int] = field(default_factory=dict)  # accepted rows that are not music


def read_user_table(lake: Lake, table: str, user_key: int, schema: pa.Schema) -> pa.Table:
    """One user's partition of a curated table, in its schema (empty when there is none)."""
    rel = zones.curated_user_file(table, user_key)
    return conform(lake.read_parquet(rel), schema) if lake.exists(rel) else schema.empty_table()


def read_user_plays(lake: Lake, user_key: int) -> pa.Table:
    rel = zones.curated_user_file(TABLE, user_key)
    return conform(lake.read_parquet(rel)) if lake.exists(rel) else PLAYS.empty_table()


def _item_names(t: pa.Table) -> tuple[list, list]:
    """The two names that identify a row's item: (artist, track), (show, episode) or (book, chapter)."""
    ctype = t["content_type"].to_pylist()
    cols = {c: t[c].to_pylist() for c in ("artist_name", "track_name", "show_name", "episode_name",
                                          "audiobook_title", "chapter_title")}
    first, second = [], []
    for i, c in enumerate(ctype):
        if c == "episode":
            first.append(cols["show_name"][i])
            second.append(cols["episode_name"][i])
        elif c == "audiobook":
            first.append(cols["audiobook_title"][i])
            second.append(cols["chapter_title"][i])
        else:
            first.append(cols["artist_name"][i])
            second.append(cols["track_name"][i])
    return first, second


def account_play_ids(rows: pa.Table) -> pa.Array:
    """Playback ids of account rows from their normalised names, not their resolved id: the same row read from two
    overlapping account exports keeps its id even when resolution improved in between."""
    first, second = _item_names(rows)
    keys = names.keys_of(first, second)
    user = rows["user_key"].to_pylist()
    ended = pc.cast(rows["ended_at"], pa.int64()).to_pylist()
    ctype = rows["content_type"].to_pylist()
    ms = rows["ms_played"].to_pylist()
    return pa.array([
        hashlib.md5(f"{u}|{e}|a:{c}:{k}|{m}".encode()).hexdigest()
        for u, e, c, k, m in zip(user, ended, ctype, keys, ms, strict=True)
    ], pa.string())


def scrobble_play_ids(rows: pa.Table) -> pa.Array:
    """Playback ids of scrobbles from (user, start time — the end when only that is known —, normalised names): the
    same listen in two exports of one
    service, or sent by one scrobbler to two services, gets one id whatever the spelling of case and credits."""
    keys = names.keys_of(rows["artist_name"].to_pylist(), rows["track_name"].to_pylist())
    user = rows["user_key"].to_pylist()
    started = pc.cast(pc.coalesce(rows["listened_at"], rows["ended_at"]), pa.int64()).to_pylist()
    return pa.array([
        None if s is None else hashlib.md5(f"{u}|{s}|s:{k}".encode()).hexdigest()
        for u, s, k in zip(user, started, keys, strict=True)
    ], pa.string())


def _overlap_inputs(t: pa.Table, idx: pa.Array) -> pa.Table:
    first, second = _item_names(t)
    return pa.table({
        "idx": idx,
        "t": pc.cast(t["ended_at"], pa.int64()),
        "ms": t["ms_played"],
        "ctype": t["content_type"],
        "k": pa.array(names.keys_of(first, second), pa.string()),
        "tid": pc.coalesce(t["track_id"], t["episode_id"], t["chapter_id"]),
    })


def _upgrade_surrogates(existing: pa.Table, resolver: resolve.Resolver) -> tuple[pa.Table, int]:
    """Account rows stored with a surrogate track id get the real id once some later import makes it known."""
    is_acc = pc.fill_null(pc.and_(pc.is_in(existing["source"], pa.array(NAME_ONLY_SOURCES)),
                                  pc.equal(existing["content_type"], "track")), False)
    if not pc.any(is_acc).as_py():
        return existing, 0
    tids = existing["track_id"].to_pylist()
    acc = is_acc.to_pylist()
    cand = [i for i, a in enumerate(acc) if a and names.is_surrogate(tids[i])]
    if not cand:
        return existing, 0
    artists, titles = existing["artist_name"].to_pylist(), existing["track_name"].to_pylist()
    ids, ok = resolver.resolve_tracks([artists[i] for i in cand], [titles[i] for i in cand])
    n = 0
    for j, (i, new_id, hit) in enumerate(zip(cand, ids.to_pylist(), ok.to_pylist(), strict=True)):
        del j
        if hit:
            tids[i] = new_id
            n += 1
    if not n:
        return existing, 0
    col = existing.column_names.index("track_id")
    return existing.set_column(col, "track_id", pa.array(tids, pa.string())), n


def merge_plays(
    lake: Lake,
    user_key: int,
    new_rows: pa.Table,
    *,
    tolerance_s: float | None = None,
    ms_tolerance: int = overlap.MS_TOLERANCE,
    resolver: resolve.Resolver | None = None,
    api_tolerance_s: float | None = None,
    record_names: bool = True,
    scrobble_tolerance_s: float | None = None,
) -> MergeResult:
    """Add new rows to the user's partition.

    Rows whose playback id is already there count as duplicates. With `tolerance_s`, account-data rows and
    extended/API rows that are one playback by the rule of `curate.overlap` are merged: the extended/API row is
    kept and the pair counts once, as `merged` for the batch whose row did not add a playback. Scrobbles are
    matched to Spotify rows and to each other by `curate.scrobble_merge` (tolerance `scrobble_tolerance_s`, else
    `tolerance_s`; the Web API pull passes only that).
    """
    existing = read_user_plays(lake, user_key)
    upgraded = 0
    if resolver is not None and existing.num_rows:
        existing, upgraded = _upgrade_surrogates(existing, resolver)
    new_rows = conform(new_rows)
    kept, dups = _dedupe(existing, new_rows)

    merged_by: dict[str, int] = {}
    replaced = 0
    repl: set[int] = set()
    if tolerance_s is not None and kept.num_rows:
        kept, merged_by, replaced, repl = _merge_overlaps(kept, tolerance_s, ms_tolerance)
    if api_tolerance_s is not None and kept.num_rows:
        kept, api_merged, api_replaced, repl = _replace_api_rows(kept, api_tolerance_s, repl)
        for b, n in api_merged.items():
            merged_by[b] = merged_by.get(b, 0) + n
        replaced += api_replaced
    scrobble_tol = scrobble_tolerance_s if scrobble_tolerance_s is not None else tolerance_s
    if scrobble_tol is not None and kept.num_rows:
        kept, scr_merged, scr_replaced, repl = scrobble_merge.merge_scrobbles(kept, scrobble_tol, repl)
        for b, n in scr_merged.items():
            merged_by[b] = merged_by.get(b, 0) + n
        replaced += scr_replaced
    # Accepted = incoming rows kept that did not replace a stored account row (those count as merged).
    not_music = pc.and_(pc.equal(kept["_pri"], 1), pc.fill_null(pc.not_equal(kept["content_type"], "track"), True))
    counts = kept.filter(not_music).group_by("batch_id").aggregate([([], "count_all")])
    excluded = dict(zip(counts["batch_id"].to_pylist(), counts["count_all"].to_pylist(), strict=True))
    for i in repl:
        if kept["content_type"][i].as_py() != "track":
            excluded[kept["batch_id"][i].as_py()] -= 1
    kept = conform(kept)
    # Ids these rows carry resolve name-only rows of later imports (any source, any user). Recorded before the
    # rows are written: a lake without a name index yet builds it from the plays it holds, and these rows must not
    # be read there and then added a second time. The partition is encoded meanwhile on a thread (~0.15 s each for a
    # 300k-play listener); only this thread touches the lake, so the index never reads the partition being written.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunelake-encode") as pool:
        encoded = pool.submit(parquet_bytes, kept, **PARQUET_OPTIONS) if new_rows.num_rows or upgraded else None
        if new_rows.num_rows and record_names:
            resolve.record_known(lake, [new_rows])
        if encoded is not None:
            lake.write_bytes(zones.curated_user_file(TABLE, user_key), encoded.result())
    return MergeResult(existing.num_rows, kept.num_rows, dups, merged_by, replaced, upgraded, excluded)


def _play_ids(rows: pa.Table) -> pa.Array:
    """Playback ids of rows that have none yet (account rows come with theirs, and so do extended-history rows the
    fast parse read knowing their user), computed by DuckDB over the Arrow columns in place."""
    if rows.num_rows and rows["play_id"].null_count == 0:
        return rows["play_id"].combine_chunks()
    con = cursor()
    try:
        con.register("incoming", rows)
        ids = arrow_of(con.sql(f"SELECT coalesce(play_id, {PLAY_ID_SQL}) AS play_id FROM incoming"))["play_id"]
    finally:
        con.close()
    if len(ids) != rows.num_rows:
        raise AssertionError("play ids do not line up with their rows")
    return ids.combine_chunks()


def _dedupe(existing: pa.Table, fresh: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """Stored rows first, then the new ones; of the rows sharing a playback id the first by (stored before new,
    batch, record number) is kept, in (ended_at, play_id) order.

    Repeated ids are found by hashing, and only their rows are sorted to pick the first of each: a listener's first
    import repeats a handful of playbacks, and sorting every row by its id cost half the merge. The wide rows are
    taken once, in the final order (not at all when they already run in it, as slices when they nearly do)."""
    fresh = fresh.set_column(fresh.column_names.index("play_id"), "play_id", _play_ids(fresh))
    both = pa.concat_tables([existing.append_column("_pri", pa.array(np.zeros(existing.num_rows, np.int32))),
                             fresh.append_column("_pri", pa.array(np.ones(fresh.num_rows, np.int32)))])
    ids = both["play_id"].combine_chunks()
    repeated = _repeated(ids)
    dups: dict[str, int] = {}
    keep = None
    if len(repeated):
        rows = pc.indices_nonzero(pc.is_in(ids, repeated))
        keys = pa.table({"play_id": ids.take(rows), "_pri": both["_pri"].take(rows),
                         "batch_id": both["batch_id"].take(rows), "record_no": both["record_no"].take(rows)})
        order = pc.sort_indices(keys, [("play_id", "ascending"), ("_pri", "ascending"), ("batch_id", "ascending"),
                                       ("record_no", "ascending")])
        sorted_ids = keys["play_id"].take(order)
        later = pc.equal(sorted_ids[1:], sorted_ids[:-1])  # same id as the row before: not the first
        dropped = order[1:].filter(later)
        by_batch = keys["batch_id"].take(dropped).value_counts()
        dups = dict(zip(by_batch.field("values").to_pylist(), by_batch.field("counts").to_pylist(), strict=True))
        keep = np.ones(both.num_rows, bool)
        keep[rows.take(dropped).to_numpy()] = False
    ended = both["ended_at"].combine_chunks()
    if keep is None and _strictly_increasing(ended):
        return both, dups
    sub = pa.table({"ended_at": ended, "play_id": ids})
    kept = None if keep is None else pa.array(np.flatnonzero(keep))
    order = pc.sort_indices(sub if kept is None else sub.take(kept), [("ended_at", "ascending"),
                                                                      ("play_id", "ascending")])
    return _taken(both, order if kept is None else kept.take(order)), dups


def _repeated(ids: pa.Array) -> pa.Array:
    """The playback ids that occur more than once. Over a big listener's ids DuckDB's hash aggregate finds them
    fastest (300k ids: 35 ms, where Arrow's `value_counts` takes 90 ms, 220 ms as the first count in a process);
    over a small one's, Arrow's (3k ids: 0.15 ms against 1.5 ms for a DuckDB cursor and query)."""
    if len(ids) < _DUCKDB_COUNTS:
        counts = pc.value_counts(ids)
        return counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    con = cursor()
    try:
        con.register("ids", pa.table({"play_id": ids}))
        found = arrow_of(con.sql("SELECT play_id FROM ids GROUP BY play_id HAVING count(*) > 1"))["play_id"]
    finally:
        con.close()
    return found.combine_chunks().cast(pa.string())


_DUCKDB_COUNTS = 50_000


# More runs than this and one `take` of every row costs less than stitching the runs together.
_MAX_RUNS = 4096


def _taken(table: pa.Table, order: pa.Array) -> pa.Table:
    """`table.take(order)`, without copying the rows when `order` is a few runs of consecutive rows — as it is when
    an import's files already run in time order and only its repeated playbacks drop out: the runs are zero-copy
    slices (a take copies every column of every row: ~65 ms per 300k wide rows)."""
    idx = order.to_numpy()
    if len(idx) == 0:
        return table.take(order)
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    if len(breaks) >= _MAX_RUNS:
        return table.take(order)
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(idx)]))
    return pa.concat_tables([table.slice(int(idx[s]), int(e - s)) for s, e in zip(starts, ends, strict=True)])


def _strictly_increasing(values: pa.Array) -> bool:
    if values.null_count:
        return False
    return len(values) < 2 or pc.all(pc.less(values[:-1], values[1:])).as_py()


def _replace_api_rows(kept: pa.Table, tolerance_s: float, repl: set[int]
                      ) -> tuple[pa.Table, dict[str, int], int, set[int]]:
    """An export imported after an API pull: a stored API play and an incoming extended-history play that are one
    playback by the rule of `curate.overlap`. The extended row is kept (it has the real ms_played; the API only
    gives the track's duration), the API row goes, and the pair counts as `merged` for the incoming batch."""
    stored_api = pc.fill_null(pc.and_(pc.equal(kept["source"], "api"), pc.equal(kept["_pri"], 0)), False)
    if not pc.any(stored_api).as_py():
        return kept, {}, 0, repl  # the usual case, found without a pass over every row
    incoming_ext = pc.fill_null(pc.and_(pc.equal(kept["source"], "extended"), pc.equal(kept["_pri"], 1)), False)
    if not pc.any(incoming_ext).as_py():
        return kept, {}, 0, repl
    idx = pa.array(np.arange(kept.num_rows, dtype=np.int64))
    t = pc.cast(kept["ended_at"], pa.int64())

    def side(mask: pa.Array) -> pa.Table:
        return overlap.api_inputs(idx.filter(mask), t.filter(mask), kept["track_id"].filter(mask))

    pairs = overlap.api_pairs(side(stored_api), side(incoming_ext), tolerance_s)
    if not pairs:
        return kept, {}, 0, repl
    batch = kept["batch_id"].to_pylist()
    merged_by: dict[str, int] = {}
    for _, e in pairs:
        merged_by[batch[e]] = merged_by.get(batch[e], 0) + 1
    used_a = {a for a, _ in pairs}
    keep = [i not in used_a for i in range(kept.num_rows)]
    new_index = {old: new for new, old in enumerate(i for i, k in enumerate(keep) if k)}
    replacing = {new_index[i] for i in repl if i in new_index} | {new_index[e] for _, e in pairs}
    return kept.filter(pa.array(keep)), merged_by, len(pairs), replacing


def _merge_overlaps(kept: pa.Table, tolerance_s: float, ms_tolerance: int
                    ) -> tuple[pa.Table, dict[str, int], int, set[int]]:
    """Drop the account row of every matched pair → (rows, merged by batch, stored rows replaced, indexes in the
    returned rows of incoming rows that replaced a stored account row)."""
    src = pc.fill_null(pc.equal(kept["source"], "account"), False)
    if not pc.any(src).as_py() or pc.all(src).as_py():
        return kept, {}, 0, set()
    incoming = pc.equal(kept["_pri"], 1)
    idx = pa.array(range(kept.num_rows), pa.int64())
    media = pc.is_in(kept["content_type"], pa.array(["track", "episode", "audiobook"]))
    acc_mask = pc.and_(src, media)
    acc = kept.filter(acc_mask)
    acc_idx = idx.filter(acc_mask)
    lo = pc.min(acc["ended_at"]).as_py()
    hi = pc.max(acc["ended_at"]).as_py()
    if lo is None:
        return kept, {}, 0, set()
    pad = pa.scalar(int((tolerance_s + 120) * 1000), pa.duration("ms"))
    window = pc.and_(pc.greater_equal(kept["ended_at"], pc.subtract(pa.scalar(lo, kept["ended_at"].type), pad)),
                     pc.less_equal(kept["ended_at"], pc.add(pa.scalar(hi, kept["ended_at"].type), pad)))
    not_scrobble = pc.invert(pc.fill_null(pc.is_in(kept["source"], pa.array(SCROBBLE_SOURCES)), False))
    oth_mask = pc.and_(pc.and_(pc.and_(pc.invert(src), not_scrobble), media), window)
    # Only pairs with at least one incoming row are new; pairs among stored rows were settled when they arrived.
    if not pc.any(pc.and_(oth_mask, incoming)).as_py() and not pc.any(pc.and_(acc_mask, incoming)).as_py():
        return kept, {}, 0, set()
    oth = kept.filter(oth_mask)
    oth_idx = idx.filter(oth_mask)
    pairs = overlap.find_pairs(_overlap_inputs(acc, acc_idx), _overlap_inputs(oth, oth_idx), tolerance_s,
                               ms_tolerance)
    pri = kept["_pri"].to_pylist()
    batch = kept["batch_id"].to_pylist()
    drop: set[int] = set()
    replacing: set[int] = set()
    merged_by: dict[str, int] = {}
    for ai, ei in pairs:
        if pri[ai] == 1:
            merged_by[batch[ai]] = merged_by.get(batch[ai], 0) + 1
        elif pri[ei] == 1:
            merged_by[batch[ei]] = merged_by.get(batch[ei], 0) + 1
            replacing.add(ei)
        else:
            continue
        drop.add(ai)
    if not drop:
        return kept, merged_by, 0, set()
    keep = [i not in drop for i in range(kept.num_rows)]
    new_index = {old: new for new, old in enumerate(i for i, k in enumerate(keep) if k)}
    return kept.filter(pa.array(keep)), merged_by, len(replacing), {new_index[i] for i in replacing}
