"""The playback-id dedupe (hash first, sort only the repeated ids) keeps exactly the rows a plain reference
implementation keeps, in the same order, and counts the same duplicates per batch — whatever the rows' order, ties
and repeats, with and without stored rows."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("hypothesis is not installed (pip install 'tunelake[dev]')", allow_module_level=True)

from tunelake.curate import plays
from tunelake.sources.types import PLAYS

rows = st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),
                min_size=0, max_size=25)


def _table(spec: list[tuple[int, str, int]], chunks: int, batches: tuple[str, str] = ("b0", "b1")) -> pa.Table:
    n = len(spec)
    t = plays.conform(pa.table({
        "user_key": pa.array([7] * n, pa.int64()),
        "ended_at": pa.array([1_700_000_000_000 + 1000 * s for s, _, _ in spec], pa.timestamp("ms")),
        "ms_played": pa.array([1000 * m for _, _, m in spec], pa.int64()),
        "content_type": pa.array(["track"] * n, pa.string()),
        "track_id": pa.array([t for _, t, _ in spec], pa.string()),
        "batch_id": pa.array([batches[i % 2] for i in range(n)], pa.string()),
        "record_no": pa.array(list(range(n)), pa.int32()),
        "source": pa.array(["extended"] * n, pa.string()),
    }))
    step = max(1, -(-n // chunks))
    return pa.Table.from_batches(t.to_batches(max_chunksize=step), schema=t.schema) if n else t


def _reference(existing: pa.Table, fresh: pa.Table) -> tuple[list[dict], dict[str, int]]:
    """What the dedupe promises, written plainly: the first row of each id by (stored first, batch, record)."""
    rows = [{**r, "_pri": 0} for r in existing.to_pylist()] + [
        {**r, "_pri": 1, "play_id": pid} for r, pid in zip(fresh.to_pylist(), plays._play_ids(fresh).to_pylist(),
                                                            strict=True)]
    first: dict[str, dict] = {}
    dups: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: (r["play_id"], r["_pri"], r["batch_id"], r["record_no"])):
        if r["play_id"] in first:
            dups[r["batch_id"]] = dups.get(r["batch_id"], 0) + 1
        else:
            first[r["play_id"]] = r
    return sorted(first.values(), key=lambda r: (r["ended_at"], r["play_id"])), dups


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, rows, st.integers(1, 3))
def test_dedupe_equals_the_reference(stored_spec, spec, chunks):
    stored = _table(stored_spec, 1, ("s0", "s1"))
    stored = stored.set_column(stored.column_names.index("play_id"), "play_id", plays._play_ids(stored))
    existing, _ = plays._dedupe(PLAYS.empty_table(), stored)  # stored rows are unique, as in a partition
    existing = plays.conform(existing)
    fresh = _table(spec, chunks)
    kept, dups = plays._dedupe(existing, fresh)
    want, want_dups = _reference(existing, fresh)
    assert kept.to_pylist() == want
    assert dups == want_dups
    assert kept.num_rows + sum(dups.values()) == existing.num_rows + len(spec)


def test_ordered_rows_without_repeats_are_kept_as_they_are():
    fresh = _table([(0, "a", 1), (1, "a", 1), (2, "b", 2), (5, "c", 0)], 2)
    kept, dups = plays._dedupe(PLAYS.empty_table(), fresh)
    assert dups == {}
    assert kept["ended_at"].to_pylist() == fresh["ended_at"].to_pylist()
    assert kept["_pri"].to_pylist() == [1, 1, 1, 1]
    assert len(set(kept["play_id"].to_pylist())) == 4


def test_a_tie_in_time_is_ordered_by_playback_id():
    fresh = _table([(3, "c", 1), (3, "a", 1), (1, "b", 0)], 1)
    kept, _ = plays._dedupe(PLAYS.empty_table(), fresh)
    times = kept["ended_at"].to_pylist()
    assert times == sorted(times)
    tied = kept["play_id"].to_pylist()[1:]
    assert tied == sorted(tied) and kept["track_id"].to_pylist()[0] == "b"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20_000), min_size=0, max_size=60), st.booleans())
def test_the_final_order_is_a_take_whether_stitched_from_slices_or_taken(cuts, shuffled):
    """`_taken` stitches runs of consecutive rows together as zero-copy slices and takes the rows when the order is
    fragmented (more than `_MAX_RUNS` runs): both give exactly `take`."""
    import numpy as np

    n = 20_000
    table = pa.table({"i": pa.array(np.arange(n)), "s": pa.array([f"r{i}" for i in range(n)])})
    table = pa.Table.from_batches(table.to_batches(max_chunksize=7_000))
    dropped = set(cuts)
    order = np.array([i for i in range(n) if i not in dropped])
    if shuffled:
        order = np.random.default_rng(len(cuts)).permutation(order)
    got = plays._taken(table, pa.array(order))
    assert got.equals(table.take(pa.array(order)))
    assert got["i"].to_pylist() == order.tolist()
    if not shuffled:  # a few runs: the rows are not copied, the result shares the table's buffers
        data = {b.address for c in table.column("i").chunks for b in c.buffers() if b is not None}
        assert got.column("i").chunk(0).buffers()[1].address in data


@pytest.mark.parametrize("n", [1_000, plays._DUCKDB_COUNTS + 1_000])
def test_repeated_ids_are_found_alike_by_either_counter(n):
    """Small listeners' ids are counted by Arrow, big ones' by DuckDB: both give exactly the ids seen twice or more
    (a null id among them too)."""
    ids = pa.array([None if i == 7 or i == 9 else f"id{i % (n - 40)}" for i in range(n)], pa.string())
    got = sorted(plays._repeated(ids).to_pylist(), key=str)
    seen: dict = {}
    for v in ids.to_pylist():
        seen[v] = seen.get(v, 0) + 1
    assert got == sorted((v for v, c in seen.items() if c > 1), key=str)
    assert len(got) == 39  # the 40 ids that wrap around but the 2 whose first place holds a null, and the null
