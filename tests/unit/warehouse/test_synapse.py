"""Synapse T-SQL: golden files, distribution/index/key rules, and sqlglot-parseable COPY INTO and SELECTs.

Regenerate the golden files after a spec change with `TUNELAKE_UPDATE_GOLDEN=1 pytest tests/unit/warehouse`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from tunelake.errors import ConfigError
from tunelake.warehouse.synapse import PLACEHOLDER_STORAGE_URL, export_synapse, render_synapse
from tunelake.warehouse.tables import TABLES, warehouse_tables

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden" / "synapse"
STORAGE_URL = "https://tunelakedemo.blob.core.windows.net/gold/tunelake"
FILES = ["00_schema.sql", "10_tables.sql", "20_copy_into.sql", "30_aggregates_ctas.sql",
         "40_serverless_views.sql", "README.md"]


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return render_synapse(STORAGE_URL)


def _blocks(text: str, start: str) -> dict[str, str]:
    """Statement text per table for statements that begin with `start <schema>.<table>`."""
    out = {}
    for m in re.finditer(rf"^{start} tunelake\.(\w+)\b(.*?);$", text, re.S | re.M):
        out[m.group(1)] = m.group(0)
    return out


def test_export_writes_golden_files(tmp_path: Path) -> None:
    written = export_synapse(tmp_path, STORAGE_URL)
    assert [p.name for p in written] == FILES
    if os.environ.get("TUNELAKE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for p in written:
            (GOLDEN / p.name).write_text(p.read_text())
    for p in written:
        assert p.read_text() == (GOLDEN / p.name).read_text(), f"{p.name} differs from its golden file"


def test_tables_distribution_index_and_keys(scripts: dict[str, str]) -> None:
    ddl = scripts["10_tables.sql"] + scripts["30_aggregates_ctas.sql"]
    creates = _blocks(ddl, "CREATE TABLE")
    alters = _blocks(ddl, "ALTER TABLE")
    assert set(creates) == {t.name for t in warehouse_tables()}
    for t in warehouse_tables():
        body = creates[t.name]
        if t.kind in ("fact", "agg"):
            assert "DISTRIBUTION = HASH(user_key)" in body, t.name
        elif t.kind in ("dim", "bridge"):
            assert "DISTRIBUTION = REPLICATE" in body, t.name
        assert "CLUSTERED COLUMNSTORE INDEX" in body, t.name
        pk = ", ".join(t.primary_key)
        assert f"PRIMARY KEY NONCLUSTERED ({pk}) NOT ENFORCED" in alters[t.name], t.name
    code = re.sub(r"--[^\n]*", "", "".join(v for k, v in scripts.items() if k.endswith(".sql"))).upper()
    assert "FOREIGN KEY" not in code
    assert "REFERENCES" not in code


def test_columns_types_and_nullability(scripts: dict[str, str]) -> None:
    creates = _blocks(scripts["10_tables.sql"], "CREATE TABLE")
    for name, body in creates.items():
        for col in TABLES[name].columns:
            null = "NULL" if col.nullable else "NOT NULL"
            assert f"\n    {col.name} {col.sql_type('tsql')} {null}" in body, (name, col.name)


def test_copy_into_parses_with_sqlglot(scripts: dict[str, str]) -> None:
    copies = _blocks(scripts["20_copy_into.sql"], "COPY INTO")
    loaded = {t.name for t in warehouse_tables() if t.kind != "agg"}
    assert set(copies) == loaded
    for name, sql in copies.items():
        tree = sqlglot.parse_one(sql, read="tsql")
        assert isinstance(tree, exp.Copy), name
        assert f"'{STORAGE_URL}/{name}/*.parquet'" in sql
        assert "FILE_TYPE = 'PARQUET'" in sql
        assert "CREDENTIAL = (IDENTITY = 'Managed Identity')" in sql
        assert re.search(rf"TRUNCATE TABLE tunelake\.{name};\nCOPY INTO", scripts["20_copy_into.sql"])


def test_ctas_selects_parse_and_match_spec(scripts: dict[str, str]) -> None:
    creates = _blocks(scripts["30_aggregates_ctas.sql"], "CREATE TABLE")
    aggs = [t for t in warehouse_tables() if t.kind == "agg"]
    assert {"agg_user_day", "agg_user_day_hour", "agg_user_track_month"} <= {t.name for t in aggs}
    assert set(creates) == {t.name for t in aggs}
    for t in aggs:
        select = creates[t.name].split("\nAS\n", 1)[1].rstrip(";")
        tree = sqlglot.parse_one(select, read="tsql")
        assert isinstance(tree, exp.Select)
        assert tree.named_selects == t.column_names
        inner = tree.find(exp.Subquery).this
        assert inner.named_selects == t.column_names  # the hand-written query yields every spec column
        # Built from fact_play, or rolled up from an aggregate built before it (as the DuckDB model does).
        sources = {tb.name for tb in inner.find_all(exp.Table)}
        assert "fact_play" in sources or sources <= {a.name for a in aggs[: aggs.index(t)]}, (t.name, sources)
    day = creates["agg_user_day"]
    assert "SUM(CASE WHEN f.is_stream = 1 THEN 1 ELSE 0 END) AS streams" in day
    assert "COUNT_BIG(DISTINCT f.track_id) AS distinct_tracks" in day
    assert "DATEFROMPARTS(YEAR(d.date), MONTH(d.date), 1) AS month_start" in creates["agg_user_track_month"]


def test_serverless_views_parse(scripts: dict[str, str]) -> None:
    views = _blocks(scripts["40_serverless_views.sql"], "CREATE OR ALTER VIEW")
    assert set(views) == {t.name for t in warehouse_tables()}
    pattern = re.compile(
        r"FROM OPENROWSET\(\n    BULK '(?P<url>[^']+)',\n    FORMAT = 'PARQUET'\n\) WITH \((?P<cols>.*?)\n\) AS r;$",
        re.S,
    )
    for name, sql in views.items():
        select = sql.split("\nAS\n", 1)[1]
        m = pattern.search(select)
        assert m, name
        assert m.group("url") == f"{STORAGE_URL}/{name}/*.parquet"
        # sqlglot (30.x) cannot parse OPENROWSET(BULK …): parse the SELECT over a stand-in table, and the WITH
        # column list as a column-definition list.
        tree = sqlglot.parse_one(select[: m.start()] + "FROM parquet_rows AS r", read="tsql")
        assert tree.named_selects == TABLES[name].column_names
        schema = sqlglot.parse_one(f"CREATE TABLE t ({m.group('cols')})", read="tsql")
        defs = [c.name for c in schema.find_all(exp.ColumnDef)]
        assert defs == TABLES[name].column_names


def test_placeholder_url_and_sas_are_marked(tmp_path: Path) -> None:
    out = render_synapse(None, credential="sas")
    assert PLACEHOLDER_STORAGE_URL in out["20_copy_into.sql"]
    assert "PLACEHOLDER" in out["20_copy_into.sql"] and "PLACEHOLDER" in out["README.md"].upper()
    assert "SECRET = '<SAS_TOKEN>'" in out["20_copy_into.sql"]
    for sql in _blocks(out["20_copy_into.sql"], "COPY INTO").values():
        sqlglot.parse_one(sql, read="tsql")


def test_readme_gives_run_order(scripts: dict[str, str]) -> None:
    readme = scripts["README.md"].split("## Order to run the scripts", 1)[1]
    positions = [readme.index(f"`{name}`") for name in FILES[:-1]]
    assert positions == sorted(positions)


def test_subset_and_errors() -> None:
    out = render_synapse(STORAGE_URL, tables=["dim_user", "fact_play"])
    assert "tunelake.dim_user" in out["10_tables.sql"] and "dim_track" not in out["10_tables.sql"]
    with pytest.raises(ConfigError):
        render_synapse("az://container/path")
    with pytest.raises(ConfigError):
        render_synapse(STORAGE_URL, tables=["nope"])
    with pytest.raises(ConfigError):
        render_synapse(STORAGE_URL, credential="password")
