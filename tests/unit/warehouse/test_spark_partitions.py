"""Local Spark's shuffle partitions grow with the curated input (a 10M-play build ran a 3 GB driver out of heap
with a fixed 4), stay at 4 for small lakes, and can be pinned."""

from __future__ import annotations

import pytest

from tunelake.errors import TunelakeError
from tunelake.warehouse.spark import MIN_PARTITIONS, PARTITION_BYTES, shuffle_partitions


def test_partitions_scale_with_input(monkeypatch):
    monkeypatch.delenv("TUNELAKE_SPARK_SHUFFLE_PARTITIONS", raising=False)
    assert shuffle_partitions(0) == MIN_PARTITIONS == 4
    assert shuffle_partitions(4 * PARTITION_BYTES) == 4
    assert shuffle_partitions(4 * PARTITION_BYTES + 1) == 5
    assert shuffle_partitions(620 * 1024**2) == 20  # ~10M plays of curated Parquet
    assert shuffle_partitions(6200 * 1024**2) == 194


def test_partitions_can_be_pinned(monkeypatch):
    monkeypatch.setenv("TUNELAKE_SPARK_SHUFFLE_PARTITIONS", "64")
    assert shuffle_partitions(10) == 64
    monkeypatch.setenv("TUNELAKE_SPARK_SHUFFLE_PARTITIONS", "many")
    with pytest.raises(TunelakeError, match="not a number"):
        shuffle_partitions(10)
