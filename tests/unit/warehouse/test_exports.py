"""Gold Parquet export (one folder per table, row counts, spec schema) and Power BI files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tunelake.errors import ConfigError, SourceError
from tunelake.lake.store import Lake
from tunelake.warehouse.exports import arrow_schema, export_gold
from tunelake.warehouse.powerbi.model import model_tables
from tunelake.warehouse.tables import Column, warehouse_tables


def _value(col: Column, i: int) -> object:
    if col.nullable and i % 3 == 2:
        return None
    return {
        "VARCHAR": f"{col.name[:3]}{i}",
        "BIGINT": 10_000_000_000 + i,
        "INTEGER": 20240101 + i,
        "SMALLINT": i % 7,
        "DOUBLE": i / 4,
        "BOOLEAN": i % 2 == 0,
        "TIMESTAMP": dt.datetime(2024, 1, 1, 12, 0, 0, 123456) + dt.timedelta(hours=i),
        "DATE": dt.date(2024, 1, 1) + dt.timedelta(days=i),
    }[col.type]


@pytest.fixture()
def warehouse() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse created from the specs' DuckDB types, with a different row count per table."""
    con = duckdb.connect()
    for n, t in enumerate(warehouse_tables()):
        cols = ", ".join(
            f'"{c.name}" {c.sql_type("duckdb")}{"" if c.nullable else " NOT NULL"}' for c in t.columns
        )
        con.execute(f'CREATE TABLE "{t.name}" ({cols})')
        rows = [[_value(c, i) for c in t.columns] for i in range(n * 3 % 7)]  # includes an empty table
        if rows:
            con.executemany(f'INSERT INTO "{t.name}" VALUES ({", ".join("?" for _ in t.columns)})', rows)
    yield con
    con.close()


def test_gold_export_one_folder_per_table(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    out = tmp_path / "gold"
    counts = export_gold(warehouse, str(out))
    assert set(counts) == {t.name for t in warehouse_tables()}
    for t in warehouse_tables():
        expected = warehouse.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0]
        assert counts[t.name] == expected
        folder = out / t.name
        assert folder.is_dir()
        assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]  # no temporary files left
        table = pq.read_table(folder)
        assert table.num_rows == expected
        assert table.schema.names == t.column_names
        assert [f.type for f in table.schema] == [f.type for f in arrow_schema(t)]


def test_gold_export_splits_and_cleans_parts(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "gold"))
    counts = export_gold(warehouse, lake, ["dim_date"], rows_per_file=2)
    n = counts["dim_date"]
    assert n > 2
    assert len(lake.listdir("dim_date")) == (n + 1) // 2
    export_gold(warehouse, lake, ["dim_date"])  # a later export with bigger files leaves no stale parts
    assert lake.listdir("dim_date") == ["part-0.parquet"]
    assert pq.read_table(lake.path("dim_date")).num_rows == n


def test_gold_export_errors(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        export_gold(warehouse, str(tmp_path), ["no_such_table"])
    warehouse.execute("DROP TABLE fact_top_item")
    with pytest.raises(SourceError, match="fact_top_item"):
        export_gold(warehouse, str(tmp_path / "g"))
    assert not (tmp_path / "g" / "dim_user").exists()  # nothing written when a table is missing


def test_cli_export_commands(demo_workspace: Path, tmp_path: Path) -> None:
    """The export commands against a real warehouse built by the demo (no stand-ins)."""
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from tunelake.cli import app
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    runner = CliRunner()
    ws = ["--workspace", str(demo_workspace)]
    res = runner.invoke(app, [*ws, "export", "gold", "--out", str(tmp_path / "gold")])
    assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "gold").iterdir()} == {t.name for t in warehouse_tables()}
    con = open_warehouse(open_workspace(demo_workspace))
    try:
        for t in ("fact_play", "dim_track", "agg_user_day"):
            expected = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            got = sum(pq.read_metadata(p).num_rows for p in (tmp_path / "gold" / t).glob("*.parquet"))
            assert got == expected > 0, t
    finally:
        con.close()
    res = runner.invoke(app, [*ws, "export", "synapse", "--out", str(tmp_path / "syn"),
                              "--storage-url", "https://acct.blob.core.windows.net/c/gold"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "syn" / "README.md").exists()
    res = runner.invoke(app, [*ws, "export", "gold", "--out", str(tmp_path / "gold-all"), "--with-analytics"])
    assert res.exit_code == 0, res.output
    written = {p.name for p in (tmp_path / "gold-all").iterdir()}
    assert written == {t.name for t in model_tables()}  # every table the Power BI project reads
    con = open_warehouse(open_workspace(demo_workspace))
    try:
        for t in ("user_segment", "recommendations", "meta_quality"):
            expected = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            got = sum(pq.read_metadata(p).num_rows for p in (tmp_path / "gold-all" / t).glob("*.parquet"))
            assert got == expected > 0, t
    finally:
        con.close()
    res = runner.invoke(app, [*ws, "export", "synapse", "--out", str(tmp_path / "syn-all"), "--with-analytics"])
    assert res.exit_code == 0, res.output
    assert "CREATE TABLE tunelake.user_segment\n" in (tmp_path / "syn-all" / "10_tables.sql").read_text()
