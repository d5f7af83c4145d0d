"""Shared fixtures for the warehouse tests: a small synthetic workspace built once per module, and a private copy
of it per test.

Each module asks for its own world (listeners, seed) through `make_demo_ws`, so the values its tests assert stay
tied to that world; the steps that build it live here once.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tunelake.curate.catalog import import_catalog
from tunelake.curate.ingest import import_paths
from tunelake.pipeline import build
from tunelake.synthetic.world import generate_world
from tunelake.workspace import Workspace, open_workspace


@pytest.fixture(scope="session")
def make_demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """generate → import every listener → catalogue → build (with the gates), in a fresh workspace."""

    def make(name: str, *, users: int, seed: int) -> Path:
        ws = tmp_path_factory.mktemp(name)
        cfg = open_workspace(ws)
        world = ws / "world"
        generate_world(world, users=users, days=30, seed=seed, account_data=False)
        for h in sorted(p.name for p in (world / "exports").iterdir()):
            import_paths(cfg, [str(world / "exports" / h)], h)
        import_catalog(cfg, world / "catalog")
        build(cfg)
        return ws

    return make


@pytest.fixture
def cfg(demo_ws: Path, tmp_path: Path) -> Workspace:
    """A private copy of the module's demo workspace (`demo_ws`), free to rebuild or corrupt."""
    ws = tmp_path / "ws"
    shutil.copytree(demo_ws, ws, ignore=shutil.ignore_patterns("world"))
    return open_workspace(ws)
