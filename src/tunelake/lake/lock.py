"""One writer at a time per workspace: an advisory `flock` on `<workspace>/.tunelake.lock`.

Every command that writes the lake or the warehouse holds it; readers (dashboard, `sql`, `status`) never take it.
The kernel drops a `flock` when its process dies, so the lock of a killed process is free at once: nothing is
stale by time-out. What tells that the last holder died mid-write is the file's content — the holder's pid and
command, written on acquire and cleared on a clean release: a lock taken over with content still in it means a
crash, and the new holder runs the workspace recovery (`lake.recovery`) before it writes anything.

The lock is re-entrant within a process (a `run` that imports and builds takes it once); other threads of the
same process wait for it like other processes do. It is a local-file lock: a workspace folder belongs to one
machine (the lake behind it may be remote).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunelake.errors import WorkspaceBusyError

LOCK_NAME = ".tunelake.lock"
# Processes a writer starts (import_many's workers) hold this one shared: a writer that takes the workspace over
# from a killed holder waits for the killed holder's orphaned workers to finish their last commit.
WORKERS_NAME = ".tunelake.workers"
log = logging.getLogger("tunelake")


class _Held:
    """The process's hold on one lock file: its descriptor, owner thread and depth."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.fd: int | None = None
        self.owner: int | None = None
        self.depth = 0
        self.crashed_before: dict[str, Any] | None = None


_HELD: dict[str, _Held] = {}
_REGISTRY = threading.Lock()


def lock_path(workspace: Path) -> Path:
    return Path(workspace) / LOCK_NAME


def _state(path: Path) -> _Held:
    with _REGISTRY:
        return _HELD.setdefault(str(path.resolve()), _Held())


def holder(workspace: Path) -> dict[str, Any] | None:
    """Who holds (or last crashed holding) the lock, from the lock file; None when it is free and clean."""
    path = lock_path(workspace)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return {"pid": None, "command": "unknown (unreadable lock file)"}


def describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process"
    return f"pid {info.get('pid')} ({info.get('command', '?')}, since {str(info.get('since', '?'))[:19]})"


def last_takeover(workspace: Path) -> dict[str, Any] | None:
    """The holder this process took the lock over from after it died mid-write (None after clean releases)."""
    return _state(lock_path(workspace)).crashed_before


def is_held_here(workspace: Path) -> bool:
    """Does this thread hold the workspace lock (so a writer below may go on without taking it)?"""
    st = _state(lock_path(workspace))
    return st.depth > 0 and st.owner == threading.get_ident()


@contextmanager
def workspace_lock(
    workspace: Path,
    *,
    timeout_s: float = 300.0,
    command: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    on_takeover: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[None]:
    """Hold the workspace's writer lock for the block.

    Waits up to `timeout_s` for another writer (telling `on_wait` once whom it waits for), then raises
    `WorkspaceBusyError` (exit code 75: try again later). `on_takeover(info)` runs, still under the lock, when the
    previous holder died without releasing it: that is where the caller repairs the workspace."""
    path = lock_path(workspace)
    st = _state(path)
    me = threading.get_ident()
    if st.depth and st.owner == me:
        st.depth += 1
        try:
            yield
        finally:
            st.depth -= 1
        return
    deadline = time.monotonic() + max(0.0, timeout_s)
    if not st.mutex.acquire(timeout=max(0.0, timeout_s)):
        raise WorkspaceBusyError(f"workspace {workspace} is busy: another thread of this process is writing",
                            hint=f"waited {timeout_s:.0f} s (setting lock_timeout_s)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            told = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() >= deadline:
                    raise WorkspaceBusyError(
                        f"workspace {workspace} is busy: {describe(holder(workspace))} is writing to it",
                        hint=f"waited {timeout_s:.0f} s (setting lock_timeout_s); run the command again when it "
                             "is done")
                if not told and on_wait is not None:
                    on_wait(f"waiting for the workspace lock held by {describe(holder(workspace))}")
                    told = True
                time.sleep(0.05)
            _wait_for_workers(Path(workspace), deadline, timeout_s)
            previous = os.pread(fd, 65536, 0)
            info = {"pid": os.getpid(), "command": command or " ".join(["tunelake", *sys.argv[1:3]]),
                    "since": datetime.now(UTC).isoformat()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        st.fd, st.owner, st.depth = fd, me, 1
        st.crashed_before = None
        try:
            if previous.strip():
                try:
                    crashed = json.loads(previous)
                except ValueError:
                    crashed = {"pid": None, "command": "unknown"}
                st.crashed_before = crashed
                if on_takeover is not None:
                    on_takeover(crashed)
            yield
        finally:
            st.depth = 0
            st.owner = None
            st.fd = None
            try:
                os.ftruncate(fd, 0)  # a clean release: the next holder knows nobody died mid-write
            finally:
                os.close(fd)  # closing drops the flock
    finally:
        st.mutex.release()


def _wait_for_workers(workspace: Path, deadline: float, timeout_s: float) -> None:
    fd = os.open(workspace / WORKERS_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise WorkspaceBusyError(f"workspace {workspace} is busy: worker processes of a stopped writer are "
                                         "still finishing", hint=f"waited {timeout_s:.0f} s (setting lock_timeout_s)")
            time.sleep(0.05)
    finally:
        os.close(fd)  # released at once: it only proved that no orphaned worker is writing


@contextmanager
def worker_hold(workspace: Path) -> Iterator[None]:
    """For a process started by a lock holder to write on its behalf (see WORKERS_NAME)."""
    fd = os.open(Path(workspace) / WORKERS_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def depth(workspace: Path) -> int:
    """How deep this process holds the lock (0: not at all)."""
    return _state(lock_path(workspace)).depth


COLLECTOR_NAME = ".tunelake.collector"


@contextmanager
def collector_lock(workspace: Path, command: str) -> Iterator[None]:
    """One collector per workspace, for as long as it runs (a second one refuses at once, naming the first). It is
    not the writer lock: the collector takes that only while it writes, so `run`, `import` and the dashboard's
    uploads go on between its polls."""
    path = Path(workspace) / COLLECTOR_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            try:
                info = json.loads(path.read_text() or "null")
            except ValueError:
                info = None
            raise WorkspaceBusyError(f"a collector is already running on {workspace}: {describe(info)}",
                                     hint="stop it first (SIGTERM), or let it collect") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": command,
                                 "since": datetime.now(UTC).isoformat()}).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
