"""The lake on Azure Blob Storage (Azurite): import → build → gold export give what the same run gives locally.

Everything goes through the real stack: adlfs over HTTP to Azurite for the lake, DuckDB reading the curated Parquet
through the registered fsspec filesystem, and the gold export writing back to the container.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tunelake.lake.store import Lake
from tunelake.workspace import open_workspace

pytestmark = pytest.mark.azure


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tunelake.synthetic.world import generate_world

    out = tmp_path_factory.mktemp("az-world")
    generate_world(out, users=3, days=10, seed=5)
    return out


def run(ws: Path, lake_url: str, gold_url: str, world: Path, real_dir: Path) -> dict:
    """import (synthetic listeners + one real export) → build → export gold; returns the counts of each step."""
    from tunelake.curate.catalog import import_catalog
    from tunelake.curate.ingest import import_paths
    from tunelake.pipeline import build
    from tunelake.warehouse.exports import export_gold
    from tunelake.warehouse.store import open_warehouse

    cfg = open_workspace(ws, {"lake_url": lake_url})
    imported = {}
    for folder in sorted(p for p in (world / "exports").iterdir() if p.is_dir()):
        s = import_paths(cfg, [str(folder)], folder.name)
        imported[folder.name] = (s.total("read"), s.total("accepted"), s.total("duplicates"))
    s = import_paths(cfg, [str(real_dir / "CandidlyRed__spotify")], "real-candidlyred")
    imported["real-candidlyred"] = (s.total("read"), s.total("accepted"), s.total("duplicates"))
    import_catalog(cfg, world / "catalog")
    info = build(cfg)
    assert all(r.passed for r in info.quality)
    con = open_warehouse(cfg)
    try:
        gold = export_gold(con, gold_url)
        tables = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in info.rows
                  if not t.startswith("int_")}
    finally:
        con.close()
    return {"imported": imported, "rows": {k: v for k, v in info.rows.items() if not k.startswith("int_")},
            "tables": tables, "gold": gold, "rows_in": info.rows_in}


def test_az_lake_run_matches_local_run(container, world, real_dir, tmp_path):
    local = run(tmp_path / "local-ws", str(tmp_path / "lake"), str(tmp_path / "gold"), world, real_dir)
    remote = run(tmp_path / "az-ws", f"az://{container}/lake", f"az://{container}/gold", world, real_dir)

    assert remote["imported"] == local["imported"]
    assert remote["rows_in"] == local["rows_in"] > 1000
    assert remote["rows"] == local["rows"]
    assert remote["tables"] == local["tables"]
    assert remote["gold"] == local["gold"]
    assert remote["gold"]["fact_play"] == local["tables"]["fact_play"] > 1000

    # The blobs are really in the container: the curated zone and the gold Parquet, readable by any client.
    lake = Lake(f"az://{container}/lake")
    assert lake.glob("curated/plays/**/*.parquet")
    gold = Lake(f"az://{container}/gold")
    parts = gold.glob("fact_play/*.parquet")
    assert parts and gold.read_parquet(parts).num_rows == local["gold"]["fact_play"]
    local_gold = duckdb.connect().execute(
        f"SELECT sum(ms_played) FROM read_parquet('{tmp_path / 'gold' / 'fact_play'}/*.parquet')").fetchone()[0]
    assert sum(gold.read_parquet(parts).column("ms_played").to_pylist()) == local_gold


def test_import_is_idempotent_on_azure(container, world):
    from tunelake.curate.ingest import import_paths

    cfg = open_workspace(Path(world.parent / "idem-ws"), {"lake_url": f"az://{container}/lake"})
    folder = sorted(p for p in (world / "exports").iterdir() if p.is_dir())[0]
    first = import_paths(cfg, [str(folder)], folder.name)
    again = import_paths(cfg, [str(folder)], folder.name)
    assert first.total("accepted") > 0
    assert again.total("accepted") == 0
    assert {f.status for f in again.files} == {"already imported"}


def test_abfs_scheme_reaches_the_same_blobs(container):
    Lake(f"az://{container}/x").write_json("a/b.json", {"n": 1})
    lake = Lake(f"abfs://{container}/x")
    assert lake.read_json("a/b.json") == {"n": 1}
    assert lake.glob("a/*.json") == ["a/b.json"]
    assert lake.uri("a/b.json") == f"abfs://{container}/x/a/b.json"
    # writes are atomic: no temporary names are left behind
    lake.write_bytes("a/c.bin", b"xyz")
    assert lake.listdir("a") == ["b.json", "c.bin"]


def test_missing_credentials_name_the_fix(monkeypatch):
    from tunelake.lake.store import _azure_storage_options

    for var in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
    assert _azure_storage_options() == {"account_name": "acct", "anon": False}  # → DefaultAzureCredential
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x")
    assert _azure_storage_options() == {"account_name": "acct", "sas_token": "sv=1&sig=x"}
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "k")
    assert _azure_storage_options() == {"account_name": "acct", "account_key": "k"}


def test_spark_is_given_abfss_urls_on_a_cluster():
    from tunelake.warehouse.engines.spark import hadoop_uri

    lake = "abfss://lake@acct.dfs.core.windows.net/tunelake"
    assert hadoop_uri("abfss://lake/tunelake/curated/plays/a.parquet", lake) == \
        "abfss://lake@acct.dfs.core.windows.net/tunelake/curated/plays/a.parquet"
    assert hadoop_uri("az://lake/t/x.parquet", "az://lake/t", account="acct") == \
        "abfss://lake@acct.dfs.core.windows.net/t/x.parquet"
    assert hadoop_uri("/data/lake/x.parquet", "/data/lake") == "/data/lake/x.parquet"
