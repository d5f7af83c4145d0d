"""The account-data ↔ extended-history matching rule on hand-computed cases (minute truncation, tolerance,
ms_played, one-to-one pairing)."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from tunelake.curate.overlap import find_pairs
from tunelake.sources.names import name_key

T0 = int(datetime(2024, 3, 1, 12, 30).timestamp() * 1000)  # naive → local, only differences matter


def _t(rows):
    return pa.table({
        "idx": pa.array([r[0] for r in rows], pa.int64()),
        "t": pa.array([r[1] for r in rows], pa.int64()),
        "ms": pa.array([r[2] for r in rows], pa.int64()),
        "ctype": ["track"] * len(rows),
        "k": [name_key("Artist", r[3] if len(r) > 3 else "Song") for r in rows],
        "tid": pa.array([None] * len(rows), pa.string()),
    })


def test_end_inside_the_minute_matches():
    acc = _t([(1, T0, 180_000)])
    ext = _t([(10, T0 + 59_000, 180_000)])
    assert find_pairs(acc, ext, 90) == [(1, 10)]


def test_tolerance_window_edges():
    acc = _t([(1, T0, 1000)])
    # allowed: T0 - 90 s ≤ ts < T0 + 60 s + 90 s
    assert find_pairs(acc, _t([(10, T0 - 90_000, 1000)]), 90) == [(1, 10)]
    assert find_pairs(acc, _t([(10, T0 - 90_001, 1000)]), 90) == []
    assert find_pairs(acc, _t([(10, T0 + 149_999, 1000)]), 90) == [(1, 10)]
    assert find_pairs(acc, _t([(10, T0 + 150_000, 1000)]), 90) == []
    assert find_pairs(acc, _t([(10, T0 + 61_000, 1000)]), 0) == []


def test_ms_played_must_agree_and_names_must_match():
    acc = _t([(1, T0, 100_000)])
    assert find_pairs(acc, _t([(10, T0 + 5_000, 101_000)]), 90) == [(1, 10)]
    assert find_pairs(acc, _t([(10, T0 + 5_000, 101_001)]), 90) == []
    assert find_pairs(acc, _t([(10, T0 + 5_000, 100_000, "Other Song")]), 90) == []


def test_pairing_is_one_to_one_and_prefers_the_exact_minute():
    # The same 2-minute track played twice in a row: ends at 12:30:40 and 12:32:40.
    acc = _t([(1, T0, 120_000), (2, T0 + 120_000, 120_000)])
    ext = _t([(10, T0 + 40_000, 120_000), (11, T0 + 160_000, 120_000)])
    assert sorted(find_pairs(acc, ext, 90)) == [(1, 10), (2, 11)]
    # Three identical account rows but only two extended rows: one account row stays unmatched.
    acc3 = _t([(1, T0, 5_000), (2, T0, 5_000), (3, T0, 5_000)])
    ext2 = _t([(10, T0 + 1_000, 5_000), (11, T0 + 2_000, 5_000)])
    pairs = find_pairs(acc3, ext2, 90)
    assert len(pairs) == 2 and len({a for a, _ in pairs}) == 2 and {e for _, e in pairs} == {10, 11}


def test_matching_by_resolved_id_when_names_differ():
    acc = _t([(1, T0, 1000, "Song - Remastered 2011")]).set_column(5, "tid", pa.array(["A" * 22]))
    ext = _t([(10, T0 + 1000, 1000)]).set_column(5, "tid", pa.array(["A" * 22]))
    assert find_pairs(acc, ext, 90) == [(1, 10)]


def test_empty_inputs():
    assert find_pairs(_t([]), _t([(1, T0, 1)]), 90) == []
