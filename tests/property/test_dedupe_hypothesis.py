"""The shortcut a listener's first import takes through the playback-id dedupe (nothing stored, no playback twice)
keeps the same rows in the same order as the general sort-based path, whatever the rows' order, ties and repeats."""

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
from tunelake.curate.schemas import PLAYS

rows = st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),
                min_size=0, max_size=25)


def _table(spec: list[tuple[int, str, int]], chunks: int) -> pa.Table:
    n = len(spec)
    t = plays.conform(pa.table({
        "user_key": pa.array([7] * n, pa.int64()),
        "ended_at": pa.array([1_700_000_000_000 + 1000 * s for s, _, _ in spec], pa.timestamp("ms")),
        "ms_played": pa.array([1000 * m for _, _, m in spec], pa.int64()),
        "content_type": pa.array(["track"] * n, pa.string()),
        "track_id": pa.array([t for _, t, _ in spec], pa.string()),
        "batch_id": pa.array([f"b{i % 2}" for i in range(n)], pa.string()),
        "record_no": pa.array(list(range(n)), pa.int32()),
        "source": pa.array(["extended"] * n, pa.string()),
    }))
    step = max(1, -(-n // chunks))
    return pa.Table.from_batches(t.to_batches(max_chunksize=step), schema=t.schema) if n else t


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.integers(1, 3))
def test_first_import_shortcut_equals_the_sort_path(spec, chunks):
    fresh = _table(spec, chunks)
    fast, fast_dups = plays._dedupe(PLAYS.empty_table(), fresh)
    fresh_ids = fresh.set_column(fresh.column_names.index("play_id"), "play_id", plays._play_ids(fresh))
    slow, slow_dups = plays._dedupe_sorted(PLAYS.empty_table(), fresh_ids)
    assert fast.column_names == slow.column_names
    assert fast.to_pylist() == slow.to_pylist()
    assert fast_dups == slow_dups
    assert fast.num_rows + sum(fast_dups.values()) == len(spec)


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
