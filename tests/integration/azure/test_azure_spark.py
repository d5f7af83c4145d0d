"""Spark reads an az:// lake: through adlfs on the driver here (pip's pyspark has no hadoop-azure)."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest
from tests.conftest import require

from tunelake.lake.store import Lake
from tunelake.workspace import open_workspace

pytestmark = [pytest.mark.azure, pytest.mark.spark]


def test_spark_engine_registers_curated_parquet_from_azure(container, tmp_path):
    require("pyspark", "pip install 'tunelake[spark]'")
    require("bin:java", "apt-get install openjdk-17-jre-headless")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from tunelake.warehouse.engines.spark import SparkEngine

    lake_url = f"az://{container}/lake"
    lake = Lake(lake_url)
    schema = pa.schema([("user_key", pa.int64()), ("ended_at", pa.timestamp("ms")), ("ms_played", pa.int64())])
    for user in (1, 2):
        lake.write_parquet(f"curated/plays/user_key={user}/data.parquet", pa.table({
            "user_key": [user] * 3, "ended_at": pa.array([1_700_000_000_000 + i for i in range(3)], pa.timestamp("ms")),
            "ms_played": [1000 * user] * 3}, schema=schema))
    uris = [lake.uri(r) for r in lake.glob("curated/plays/**/*.parquet")]
    assert uris[0].startswith(f"az://{container}/lake/")

    cfg = open_workspace(tmp_path / "ws", {"lake_url": lake_url, "engine": "spark"})
    cfg.warehouse_dir.mkdir(parents=True)
    engine = SparkEngine(cfg, cfg.warehouse_dir / "wh-test.duckdb")
    try:
        engine.register_parquet("cur_plays", uris, schema)
        on_spark = engine.spark_query(
            "SELECT count(*) AS n, sum(ms_played) AS ms, min(ended_at) AS first FROM cur_plays").to_pylist()[0]
        served = engine.query("SELECT count(*) AS n, sum(ms_played) AS ms FROM cur_plays").to_pylist()[0]
    finally:
        engine.close()
    assert on_spark["n"] == served["n"] == 6
    assert on_spark["ms"] == served["ms"] == 9000
    assert str(on_spark["first"]) == "2023-11-14 22:13:20"
