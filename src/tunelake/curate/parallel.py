"""Many listeners imported at once, one process per core: each listener's files are independent (per-user
partitions, one manifest entry per batch, one commit per listener), so listeners run side by side."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tunelake import duck
from tunelake.curate import resolve
from tunelake.curate.ingest import ImportSummary, _import_user, write_users_table
from tunelake.lake import zones
from tunelake.lake.lock import worker_hold
from tunelake.workspace import Workspace


def _init_worker() -> None:
    """Settings for a process that imports many listeners, one DuckDB thread each (more would only fight over the
    same cores). glibc would otherwise map and unmap every large buffer afresh, a page fault per 4 KB of every
    file's bytes and columns: keeping them in the heap took a third of the page faults away (~2 % of the CPU)."""
    import ctypes

    duck.set_import_threads(1)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: keep buffers up to 32 MB in the heap
        libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD: and the freed heap for the next file
    except (OSError, AttributeError):  # not glibc: the defaults stand
        pass


def _init_spawned_worker() -> None:
    """`_init_worker`, and no pandas: pyarrow imports it with a process's first array only to tell whether its
    input is a pandas object (~0.15 s of CPU per worker), and nothing an import worker runs uses it. Not in the
    calling process, which may need pandas afterwards."""
    import sys

    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())
    _init_worker()


class _NoPandas:
    """An import hook under which `import pandas` fails (pyarrow then goes on without it)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError("an import worker does not load pandas", name=name)


def _import_job(args: tuple[Workspace, list[str], str, str | None, str | None]) -> ImportSummary:
    """One listener of import_many. The cycle collector waits until the listener is done: a listener makes few
    cycles but many short-lived objects, and collections over every loaded module took ~4 % of the import."""
    import gc

    ws, paths, handle, timezone, pii = args
    enabled = gc.isenabled()
    gc.disable()
    try:
        with worker_hold(ws.root):
            lake = ws.lake
            with lake.transaction(f"import {handle}"):
                return _import_user(ws, lake, paths, handle, timezone=timezone, pii=pii, shared_writes=False)
    finally:
        if enabled:
            gc.enable()


def _job_bytes(paths: list[str]) -> int:
    """How much a listener's files weigh, to start the largest first."""
    total = 0
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in os.walk(p):
                total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        elif os.path.exists(p):
            total += os.path.getsize(p)
    return total


def import_many(
    ws: Workspace,
    jobs: list[tuple[str, list[str]]],
    *,
    workers: int = 0,
    timezone: str | None = None,
    pii: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[ImportSummary]:
    """Import many listeners at once, one process per core: each listener's files are independent (per-user
    partitions, one manifest entry per batch), so listeners run side by side; the lake-wide users table and name
    index are written once at the end instead of once per listener.

    Name-only rows (account data) of a listener resolve against that listener's own files and what the lake knew
    before the run, not against listeners imported in the same run; import such a listener again to use those."""
    for handle, _ in jobs:
        zones.check_handle(handle)
    with ws.writing(command=f"import ({len(jobs)} listeners)"):
        return _import_many(ws, jobs, workers=workers, timezone=timezone, pii=pii, progress=progress)


def _import_many(
    ws: Workspace,
    jobs: list[tuple[str, list[str]]],
    *,
    workers: int = 0,
    timezone: str | None = None,
    pii: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[ImportSummary]:
    """import_many under the workspace lock: each listener is its own commit (a worker process's transaction),
    the users table and name index one more at the end."""
    import multiprocessing as mp
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = workers or min(len(jobs), os.cpu_count() or 1)
    summaries: dict[str, ImportSummary] = {}
    lake = ws.lake
    if not lake.exists(resolve.INDEX):
        resolve.rebuild_index(lake)  # what the lake knew before; the listeners' contributions are added below
    merged: dict[str, list[str]] = {}
    for handle, paths in jobs:  # a listener named twice is one job: two at once would race on one partition
        merged.setdefault(handle, []).extend(paths)
    args = {handle: (ws, paths, handle, timezone, pii) for handle, paths in merged.items()}

    def done(handle: str, summary: ImportSummary) -> None:
        summaries[handle] = summary
        if progress:
            progress(len(summaries), len(args), handle)

    if workers <= 1:
        for handle in args:
            done(handle, _import_job(args[handle]))
    else:
        # This process imports too, beside workers - 1 spawned ones: it is warm while they start (~0.5 s each).
        # Largest listeners first, so the last ones to finish are small and every core stays busy to the end.
        todo = deque(sorted(args, key=lambda h: -_job_bytes(args[h][1])))
        # For the spawned workers only (read when a process starts): no OpenBLAS threads spinning beside the import.
        spawn_env = {"OPENBLAS_NUM_THREADS": "1"}
        saved = {k: os.environ.get(k) for k in spawn_env}
        for k, v in spawn_env.items():
            os.environ.setdefault(k, v)
        _init_worker()
        ctx = mp.get_context("spawn")  # no fork: DuckDB connections must not be shared with children
        try:
            with ProcessPoolExecutor(max_workers=workers - 1, mp_context=ctx, initializer=_init_spawned_worker) as pool:
                running: dict[Any, str] = {}
                while todo or running:
                    while todo and len(running) < 3 * (workers - 1):  # queued ahead: this process may be busy
                        handle = todo.popleft()
                        running[pool.submit(_import_job, args[handle])] = handle
                    for fut in [f for f in running if f.done()]:
                        done(running.pop(fut), fut.result())
                    if todo:
                        handle = todo.popleft()
                        done(handle, _import_job(args[handle]))
                    elif running:
                        fut = next(as_completed(running))
                        done(running.pop(fut), fut.result())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            duck.set_import_threads(ws.settings.import_threads)
    with lake.transaction("import: users table and name index"):
        write_users_table(lake)
        resolve.record_items(lake, [])  # what the listeners' processes committed as pending contributions
    return [summaries[h] for h, _ in jobs]
