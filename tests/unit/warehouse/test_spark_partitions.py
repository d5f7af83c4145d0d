"""Local Spark's shuffle partitions grow with the curated input (a 10M-play build ran a 3 GB driver out of heap
with a fixed 4), stay at 4 for small lakes, and can be pinned."""

from __future__ import annotations

import pytest

from tunelake.errors import ConfigError
from tunelake.warehouse.engines.spark import MIN_PARTITIONS, PARTITION_BYTES, shuffle_partitions
from tunelake.workspace import open_workspace


def test_partitions_scale_with_input():
    assert shuffle_partitions(0) == MIN_PARTITIONS == 4
    assert shuffle_partitions(4 * PARTITION_BYTES) == 4
    assert shuffle_partitions(4 * PARTITION_BYTES + 1) == 5
    assert shuffle_partitions(620 * 1024**2) == 20  # ~10M plays of curated Parquet
    assert shuffle_partitions(6200 * 1024**2) == 194


def test_partitions_can_be_pinned(monkeypatch, tmp_path):
    assert shuffle_partitions(10, pinned=64) == 64
    monkeypatch.setenv("TUNELAKE_SPARK_SHUFFLE_PARTITIONS", "64")
    assert open_workspace(tmp_path).settings.spark_shuffle_partitions == 64
    monkeypatch.setenv("TUNELAKE_SPARK_SHUFFLE_PARTITIONS", "many")
    with pytest.raises(ConfigError, match="must be a whole number"):
        open_workspace(tmp_path)
