"""What a user without pyspark or Java sees when they ask for the Spark engine: one error naming the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from tests.conftest import require

SCRIPT = textwrap.dedent("""
    import sys
    {prelude}
    from tunelake.workspace import open_workspace
    from tunelake.errors import TunelakeError
    from tunelake.warehouse.engines import make_engine
    cfg = open_workspace(sys.argv[1], {{"engine": "spark"}})
    try:
        make_engine(cfg, cfg.warehouse_dir / "wh-x.duckdb")
    except TunelakeError as exc:
        print("ERROR", exc, "| HINT", exc.hint)
    else:
        print("STARTED")
""")


def run(tmp_path, prelude: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(prelude=prelude), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=60)
    return out.stdout + out.stderr


@pytest.mark.spark
def test_missing_pyspark_says_how_to_install(tmp_path):
    text = run(tmp_path, "sys.modules['pyspark'] = None", dict(os.environ))
    assert "ERROR" in text and "pyspark" in text
    assert "pip install 'tunelake[spark]'" in text


@pytest.mark.spark
def test_missing_java_says_how_to_install(tmp_path):
    require("pyspark", "pip install 'tunelake[spark]'")
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = os.path.dirname(sys.executable)  # the venv's bin: python, but no java
    text = run(tmp_path, "", env)
    assert "ERROR" in text and "Java" in text
    assert "openjdk-17" in text and "tunelake[spark]" in text


@pytest.mark.spark
def test_on_a_cluster_spark_writes_its_tables_to_the_lake(spark_session, tmp_path):
    """Executors cannot write to this machine's disk: with a cluster master the tables go to the lake, and the
    serving DuckDB file loads them from there."""
    import pyarrow as pa

    from tunelake.warehouse.engines.spark import SparkEngine
    from tunelake.workspace import open_workspace

    lake = tmp_path / "lake"
    cfg = open_workspace(tmp_path / "ws", {"lake_url": str(lake), "engine": "spark",
                                        "spark_master": "spark://cluster.example:7077"})
    cfg.warehouse_dir.mkdir(parents=True)
    engine = SparkEngine(cfg, cfg.warehouse_dir / "wh-20260101T000000.duckdb")  # reuses the running session
    try:
        assert engine.output == str(lake / "_spark" / "20260101T000000")
        engine.register_arrow("cur_x", pa.table({"a": [1, 2, 3], "b": ["x", "y", None]}))
        n = engine.materialize("t", "SELECT a * 10 AS a, coalesce(b, '-') AS b FROM cur_x")
        served = engine.query("SELECT sum(a) AS s, string_agg(b, '' ORDER BY b) AS b FROM t").to_pylist()[0]
    finally:
        engine.close()
    assert n == 3 and served == {"s": 60, "b": "-xy"}
    assert list((lake / "_spark" / "20260101T000000" / "t").glob("*.parquet"))


@pytest.mark.spark
def test_spark_output_folder_can_be_set(spark_session, tmp_path, monkeypatch):
    import pyarrow as pa

    from tunelake.warehouse.engines.spark import SparkEngine
    from tunelake.workspace import open_workspace

    monkeypatch.setenv("TUNELAKE_SPARK_OUTPUT", str(tmp_path / "shared"))
    cfg = open_workspace(tmp_path / "ws", {"engine": "spark"})
    cfg.warehouse_dir.mkdir(parents=True)
    engine = SparkEngine(cfg, cfg.warehouse_dir / "wh-s1.duckdb")
    try:
        engine.register_arrow("cur_x", pa.table({"a": [1, 2]}))
        assert engine.materialize("t", "SELECT a FROM cur_x") == 2
    finally:
        engine.close()
    assert list((tmp_path / "shared" / "s1" / "t").glob("*.parquet"))
