"""The workspace lock: one writer at a time across processes, re-entrant in one thread, taken over at once from a
killed holder (whose death triggers the recovery), never held by readers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tunelake.errors import WorkspaceBusyError
from tunelake.lake.lock import holder, is_held_here, last_takeover, workspace_lock
from tunelake.workspace import open_workspace

SRC = str(Path(__file__).parents[3] / "src")


def hold_in_child(ws: Path, seconds: float, kill: bool = False) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import os, sys, time
        from tunelake.lake.lock import workspace_lock
        with workspace_lock({str(ws)!r}, command="child writer"):
            print("held", flush=True)
            time.sleep({seconds})
            if {kill}:
                os._exit(9)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": SRC})
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_process_waits_then_gets_the_lock(tmp_path):
    p = hold_in_child(tmp_path, 1.0)
    waited = []
    started = time.monotonic()
    with workspace_lock(tmp_path, timeout_s=30, on_wait=waited.append):
        took = time.monotonic() - started
    p.wait()
    assert 0.5 < took < 20
    assert len(waited) == 1 and "child writer" in waited[0] and f"pid {p.pid}" in waited[0]


def test_a_second_process_gives_up_after_the_timeout(tmp_path):
    p = hold_in_child(tmp_path, 5.0)
    try:
        with pytest.raises(WorkspaceBusyError, match=f"pid {p.pid} \\(child writer") as exc, \
                workspace_lock(tmp_path, timeout_s=0.3):
            pass
        assert exc.value.exit_code == 75
    finally:
        p.kill()
        p.wait()


def test_the_lock_of_a_killed_holder_is_taken_over_at_once_and_reported(tmp_path):
    p = hold_in_child(tmp_path, 0.1, kill=True)
    p.wait()
    assert holder(tmp_path)["command"] == "child writer"  # its content says it died holding it
    seen = []
    started = time.monotonic()
    with workspace_lock(tmp_path, timeout_s=5, on_takeover=seen.append):
        assert time.monotonic() - started < 1
        assert seen and seen[0]["pid"] == p.pid
        assert last_takeover(tmp_path)["pid"] == p.pid
    assert holder(tmp_path) is None  # a clean release leaves no content
    with workspace_lock(tmp_path, on_takeover=seen.append):
        assert last_takeover(tmp_path) is None
    assert len(seen) == 1


def test_reentrant_in_one_thread_exclusive_between_threads(tmp_path):
    order = []
    with workspace_lock(tmp_path):
        with workspace_lock(tmp_path):
            assert is_held_here(tmp_path)

        def other() -> None:
            with workspace_lock(tmp_path, timeout_s=10):
                order.append("other")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        order.append("first")
    t.join()
    assert order == ["first", "other"]
    assert not is_held_here(tmp_path)


def test_writing_makes_the_secrets_folder_private_first(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    with ws.writing():
        assert oct((tmp_path / "ws" / "secrets").stat().st_mode & 0o777) == "0o700"
