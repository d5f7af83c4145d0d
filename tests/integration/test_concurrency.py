"""Two writers at once, and writers killed with SIGKILL mid-way: the workspace lock and the warehouse's file
lifecycle keep the workspace whole. Every writer here is a real `tunelake` process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunelake.curate.parallel import import_many
from tunelake.lake.lock import workspace_lock
from tunelake.workspace import open_workspace

SRC = Path(__file__).parents[2] / "src"


def tunelake(ws: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunelake.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TUNELAKE_HOME": str(ws), "PYTHONPATH": str(SRC), **env})


def finish(p: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def healthy(ws: Path) -> dict:
    """The checks a user would run after the fact: sql answers, status answers, doctor finds nothing wrong, and
    only the current and previous warehouse files are there."""
    rc, out, err = finish(tunelake(ws, "sql", "SELECT count(*) AS n FROM fact_play", "--format", "json"))
    assert rc == 0, err
    plays = json.loads(out)[0]["n"]
    rc, _, err = finish(tunelake(ws, "status"))
    assert rc == 0, err
    rc, out, err = finish(tunelake(ws, "doctor", "--check", "--format", "json"))
    findings = {f["check"]: f for f in json.loads(out)}
    assert rc == 0, findings
    pointer = json.loads((ws / "warehouse" / "CURRENT.json").read_text())
    files = sorted(p.name for p in (ws / "warehouse").glob("wh-*"))
    assert set(files) <= {pointer["file"], pointer.get("previous")}, files
    assert (ws / "warehouse" / pointer["file"]).exists()
    return {"plays": plays, "findings": findings, "pointer": pointer}


@pytest.fixture(scope="module")
def imported(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    ws = tmp_path_factory.mktemp("conc") / "ws"
    cfg = open_workspace(ws)
    handles = sorted(p.name for p in (small_world / "exports").iterdir())
    import_many(cfg, [(h, [str(small_world / "exports" / h)]) for h in handles])
    rc, out, err = finish(tunelake(ws, "build"))
    assert rc == 0, err
    rc, out, _ = finish(tunelake(ws, "sql", "SELECT count(*) AS n FROM fact_play", "--format", "json"))
    return ws, json.loads(out)[0]["n"]


@pytest.fixture
def ws(imported: tuple[Path, int], tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(imported[0], copy)
    return copy


def test_two_builds_at_once_both_succeed_one_after_the_other(ws, imported):
    first = tunelake(ws, "build", "--force")
    time.sleep(0.3)
    second = tunelake(ws, "build", "--force")
    (rc1, _, err1), (rc2, _, err2) = finish(first), finish(second)
    assert rc1 == 0 and rc2 == 0, (err1, err2)
    assert "waiting for the workspace lock" in err1 + err2  # one of them saw the other and waited
    assert healthy(ws)["plays"] == imported[1]


def test_two_runs_at_once(ws, imported):
    first = tunelake(ws, "run", "--force", "--no-report")
    time.sleep(0.5)
    second = tunelake(ws, "run", "--force", "--no-report")
    (rc1, _, err1), (rc2, _, err2) = finish(first), finish(second)
    assert rc1 == 0 and rc2 == 0, (err1, err2)
    state = healthy(ws)
    assert state["plays"] == imported[1]


def test_a_second_writer_gives_up_after_the_lock_timeout_with_a_clear_message(ws):
    with workspace_lock(ws, command="test holder"):
        rc, _, err = finish(tunelake(ws, "build", "--force", TUNELAKE_LOCK_TIMEOUT_S="1"))
    assert rc == 75
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: workspace") and f"pid {os.getpid()} (test holder" in lines[-1]
    assert "lock_timeout_s" in lines[-1] and "Traceback" not in err


def test_readers_do_not_wait_for_a_writer(ws, imported):
    with workspace_lock(ws, command="test holder"):
        started = time.monotonic()
        rc, out, err = finish(tunelake(ws, "sql", "SELECT count(*) AS n FROM fact_play", "--format", "json",
                                       TUNELAKE_LOCK_TIMEOUT_S="30"))
        assert rc == 0 and json.loads(out)[0]["n"] == imported[1], err
        assert time.monotonic() - started < 20


@pytest.mark.parametrize("delay", [0.6, 1.0, 1.4, 1.8])
def test_a_build_killed_at_any_moment_leaves_a_workspace_the_next_build_completes(ws, imported, delay):
    p = tunelake(ws, "build", "--force")
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # readers still work on the last good warehouse while the lock is orphaned
    rc, out, err = finish(tunelake(ws, "sql", "SELECT count(*) AS n FROM fact_play", "--format", "json"))
    assert rc == 0 and json.loads(out)[0]["n"] == imported[1], err
    rc, _, err = finish(tunelake(ws, "build", "--force"))
    assert rc == 0, err
    assert healthy(ws)["plays"] == imported[1]
    spill = ws / "warehouse" / "spill"
    assert not spill.exists() or not any(spill.iterdir())  # the killed build's scratch file is gone


def test_a_killed_run_is_marked_interrupted_and_its_files_are_removed(ws, imported):
    p = tunelake(ws, "run", "--force", "--no-report")
    time.sleep(2.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    runs = sorted((ws / "lake" / "_manifest" / "runs").glob("*.json"))
    killed = json.loads(runs[-1].read_text())
    assert killed["status"] == "running"  # what the log says until someone takes the lock over
    rc, out, err = finish(tunelake(ws, "doctor", "--format", "json"))
    assert rc == 0, out + err
    findings = {f["check"]: f for f in json.loads(out)}
    assert findings["lock"]["status"] == "repaired" and findings["run log"]["status"] == "repaired"
    assert killed["run_id"] in findings["run log"]["detail"]
    after = json.loads(runs[-1].read_text())
    assert after["status"] == "interrupted"
    assert all(s["status"] != "running" and s.get("ended_at") for s in after["steps"])
    assert healthy(ws)["plays"] == imported[1]
