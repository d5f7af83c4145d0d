"""Shared fixtures: real data files, a small synthetic world built once per session, and `require`.

`require` is how a test states a dependency: elsewhere a missing one skips the test with a reason, but under
CI=true it fails, so CI can never pass by skipping.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(what: str, reason: str = "") -> object:
    """Import a module (or find an executable, when `what` starts with 'bin:'); fail under CI, skip elsewhere."""
    try:
        if what.startswith("bin:"):
            path = shutil.which(what[4:]) or (str(REPO / "node_modules" / ".bin" / what[4:])
                                              if (REPO / "node_modules" / ".bin" / what[4:]).exists() else None)
            if not path:
                raise FileNotFoundError(what[4:])
            return path
        return importlib.import_module(what)
    except (ImportError, FileNotFoundError) as exc:
        message = f"missing dependency {what!r}{': ' + reason if reason else ''} ({exc})"
        if IN_CI:
            pytest.fail(message + " — CI must install it (make test does)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def real_dir() -> Path:
    if not REAL.exists():
        if IN_CI:
            pytest.fail(f"real fixture files not found at {REAL}")
        pytest.skip("real fixture files not found")
    return REAL


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 14-listener, 45-day synthetic world, generated once per test session."""
    from tunelake.synthetic.world import generate_world

    out = tmp_path_factory.mktemp("world")
    generate_world(out, users=14, days=45, seed=7)
    return out


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace where `tunelake demo --no-serve` has run on a small world (built once per session)."""
    from tunelake.cli.demo import run_demo
    from tunelake.workspace import open_workspace

    ws = tmp_path_factory.mktemp("demo-ws")
    run_demo(open_workspace(ws), users=28, days=60, seed=11)
    return ws


@pytest.fixture(scope="session")
def requires():
    """`require` for test modules (conftest cannot be imported under --import-mode=importlib)."""
    return require
