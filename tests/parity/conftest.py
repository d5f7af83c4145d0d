"""One curated lake, built by every engine: the fixtures the parity tests share.

The lake holds a small synthetic world (12 listeners × 30 days, with account data: library, playlists) and three
real exports (new- and old-format extended history, and an account-data export). It is imported once per test
session; each engine then builds its own warehouse from it in its own workspace, so the tests compare what the
engines made of the same input. One SparkSession serves the whole test session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require

ENGINES = ("duckdb", "spark")
REAL_USERS = {
    "real-efrrowini": "Efrrowini__spotify-music-analysis",
    "real-candidlyred": "CandidlyRed__spotify",
    "real-erin": "hobbies-w-erin__Spotify-Account-Data",
}


@pytest.fixture(scope="session")
def spark_session() -> Any:
    """The shared local SparkSession (Java and pyspark are required: under CI a missing one fails)."""
    require("pyspark", "pip install 'tunelake[spark]'")
    require("bin:java", "apt-get install openjdk-17-jre-headless")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from tunelake.warehouse.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session


@pytest.fixture(scope="session")
def parity_lake(tmp_path_factory: pytest.TempPathFactory, real_dir: Path) -> Path:
    from tunelake.curate.catalog import import_catalog
    from tunelake.curate.ingest import import_paths
    from tunelake.synthetic.world import generate_world
    from tunelake.workspace import open_workspace

    root = tmp_path_factory.mktemp("parity")
    world = root / "world"
    generate_world(world, users=12, days=30, seed=21)
    lake = root / "lake"
    cfg = open_workspace(root / "import-ws", {"lake_url": str(lake)})
    for folder in sorted(p for p in (world / "exports").iterdir() if p.is_dir()):
        import_paths(cfg, [str(folder)], folder.name)
    import_catalog(cfg, world / "catalog")
    for handle, name in REAL_USERS.items():
        import_paths(cfg, [str(real_dir / name)], handle)
    return lake


class _Builds(dict):
    """engine → (Workspace, BuildInfo), built on first use from the shared lake in a workspace of its own."""

    def __init__(self, lake: Path, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.lake, self.factory = lake, factory

    def __missing__(self, engine: str) -> Any:
        from tunelake.pipeline import build
        from tunelake.workspace import open_workspace

        if engine == "spark":
            require("pyspark", "pip install 'tunelake[spark]'")
            require("bin:java", "apt-get install openjdk-17-jre-headless")
        cfg = open_workspace(self.factory.mktemp(f"ws-{engine}"), {"lake_url": str(self.lake), "engine": engine})
        self[engine] = (cfg, build(cfg, force=True))
        return self[engine]


@pytest.fixture(scope="session")
def built(parity_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """engine name → (Workspace, BuildInfo) of a warehouse built from `parity_lake` (each engine built once)."""
    return _Builds(parity_lake, tmp_path_factory)
