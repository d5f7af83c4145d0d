"""DuckDB and Spark run the same SQL models on the same curated lake and must build the same warehouse.

Every warehouse table is compared row by row, sorted by its primary key: integers, strings, booleans, dates and
timestamps exactly, floats to a relative 1e-9. Then the listener features are computed from both warehouses, and
the feature SQL is run on Spark itself over the tables Spark wrote.
"""

from __future__ import annotations

import math

import duckdb
import pandas as pd
import pytest

from tunelake.warehouse.build import MODEL_ORDER
from tunelake.warehouse.tables import TABLES

ENGINES = ("duckdb", "spark")

WAREHOUSE_TABLES = [m for m in MODEL_ORDER if not m.startswith("int_")]


def served(cfg, table: str) -> pd.DataFrame:
    """A table of the current warehouse as readers see it, sorted by primary key."""
    from tunelake.warehouse.store import current_warehouse_file

    spec = TABLES[table]
    con = duckdb.connect(str(current_warehouse_file(cfg)), read_only=True)
    try:
        order = ", ".join(spec.primary_key)
        return con.execute(f"SELECT * FROM {table} ORDER BY {order}").df()
    finally:
        con.close()


def _null(x) -> bool:
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def assert_same(left: pd.DataFrame, right: pd.DataFrame, what: str, float_cols: set[str],
                decimal_cols: frozenset[str] = frozenset()) -> None:
    """Equal row by row; floats to a relative 1e-9, `decimal_cols` (Spark DECIMAL(…, 5) averages) to 1e-5."""
    assert list(left.columns) == list(right.columns), what
    assert len(left) == len(right), f"{what}: {len(left)} rows on DuckDB, {len(right)} on Spark"
    for col in left.columns:
        a, b = left[col].tolist(), right[col].tolist()
        bad = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            xn, yn = _null(x), _null(y)
            if xn or yn:
                ok = xn and yn
            elif col in decimal_cols:
                ok = math.isclose(float(x), float(y), rel_tol=0, abs_tol=1e-5)
            elif col in float_cols:
                ok = math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12)
            else:
                ok = x == y
            if not ok:
                bad.append((i, x, y))
        assert not bad, f"{what}.{col}: {len(bad)} rows differ, e.g. (row, duckdb, spark) {bad[:3]}"


@pytest.mark.spark
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_builds_the_warehouse(built, engine):
    cfg, info = built[engine]
    assert not info.skipped
    assert info.rows["fact_play"] > 10_000  # synthetic world + three real exports
    assert info.rows["fact_saved_track"] > 0 and info.rows["fact_playlist_item"] > 0
    assert all(r.passed for r in info.quality), [r.describe() for r in info.quality if not r.passed]
    from tunelake.warehouse.store import read_pointer

    assert read_pointer(cfg)["engine"] == engine


@pytest.mark.spark
@pytest.mark.parametrize("table", WAREHOUSE_TABLES)
def test_spark_builds_the_same_table_as_duckdb(built, table):
    (duck_cfg, duck_info), (spark_cfg, spark_info) = built["duckdb"], built["spark"]
    assert spark_info.rows[table] == duck_info.rows[table]
    spec = TABLES[table]
    floats = {c.name for c in spec.columns if c.type == "DOUBLE"}
    left, right = served(duck_cfg, table), served(spark_cfg, table)
    assert list(left.columns) == spec.column_names
    assert_same(left, right, table, floats)


@pytest.mark.spark
def test_every_warehouse_table_is_compared():
    built_by_models = {t for t, spec in TABLES.items() if spec.layer == "warehouse" and spec.kind != "meta"}
    assert built_by_models <= set(WAREHOUSE_TABLES)


@pytest.mark.spark
def test_features_from_both_warehouses_agree(built):
    from tunelake.analytics.features import FEATURE_NAMES, compute_features
    from tunelake.warehouse.store import open_warehouse

    frames = {}
    for engine in ENGINES:
        con = open_warehouse(built[engine][0])
        try:
            frames[engine] = compute_features(con).sort_values("user_key").reset_index(drop=True)
        finally:
            con.close()
    assert len(frames["duckdb"]) >= 15
    assert_same(frames["duckdb"], frames["spark"], "features", set(FEATURE_NAMES))


@pytest.mark.spark
def test_feature_sql_runs_on_spark_itself(built, spark_session):
    """The per-user aggregates behind the features, computed by Spark over the Parquet tables Spark wrote.

    _SESSIONS_SQL is left out: DuckDB's date_diff('second', a, b) is spelled timestampdiff(SECOND, a, b) in Spark.
    """
    from tunelake.analytics import features
    from tunelake.warehouse.store import open_warehouse, read_pointer

    spark_cfg = built["spark"][0]
    stamp = read_pointer(spark_cfg)["file"].removeprefix("wh-").removesuffix(".duckdb")
    out = spark_cfg.warehouse_dir / "spark" / stamp
    session = spark_session.newSession()
    for table in ("fact_play", "dim_track", "agg_user_track_month"):
        session.read.parquet(str(out / table)).createOrReplaceTempView(table)
    audio = ",\n       ".join(f"avg(d.{a}) FILTER (WHERE d.has_audio_features) AS {a}" for a in features.AUDIO)
    queries = {
        "plays": features._PLAYS_SQL.format(audio=audio, fact_play="fact_play"),
        "artist_entropy": features._ENTROPY_SQL.format(key="artist_id", src="fact_play", name="artist_entropy"),
        "discovery": features._DISCOVERY_SQL.format(agg_user_track_month="agg_user_track_month"),
    }
    con = open_warehouse(built["duckdb"][0])
    try:
        for name, sql in queries.items():
            result = session.sql(sql)
            # Spark reads the literal 1.0 as DECIMAL(2,1), so avg(CASE … THEN 1.0 ELSE 0.0 END) is a DECIMAL with
            # 5 decimals there and a DOUBLE on DuckDB: those columns agree to 1e-5, the rest exactly.
            decimals = frozenset(f.name for f in result.schema.fields if f.dataType.typeName() == "decimal")
            on_spark = result.toPandas().sort_values("user_key").reset_index(drop=True)
            on_duck = con.execute(sql).df().sort_values("user_key").reset_index(drop=True)
            floats = {c for c in on_duck.columns if on_duck[c].dtype.kind == "f" or on_spark[c].dtype.kind == "f"}
            assert_same(on_duck, on_spark[list(on_duck.columns)], f"feature sql {name}", floats, decimals)
    finally:
        con.close()
