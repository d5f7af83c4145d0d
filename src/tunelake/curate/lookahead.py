"""Parsing the next files while the current one is stored: one listener's big export is a few files of ~100k plays
each, and their parse (DuckDB's JSON reader, which releases the GIL) ran one file after the other on one core.

The pool's threads live as long as the process, so each keeps its DuckDB connection and prepared parse statements
(`sources/extended_fast`) from one import to the next; a process that imports one listener after another in a
worker of a parallel import asks for width 1 and gets the plain serial loop, with no threads at all."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def _pool(width: int) -> ThreadPoolExecutor:
    with _LOCK:
        pool = _POOLS.get(width)
        if pool is None:
            pool = _POOLS[width] = ThreadPoolExecutor(max_workers=width, thread_name_prefix="tunelake-parse")
        return pool


def lookahead(jobs: Iterable[tuple[T, Callable[[], R] | None]], width: int
              ) -> Iterator[tuple[T, Callable[[], R] | None]]:
    """Each job with a callable giving its work's result (or raising its error), in the jobs' order; the work of up
    to `width` jobs runs in threads ahead of the consumer. The jobs iterable itself is advanced in the caller's
    thread (it may read the lake), so only the work must be thread-safe; at most `width` + 1 jobs are held at once.
    A job without work (None) is passed through."""
    if width <= 1:
        yield from jobs
        return
    pool = _pool(width)
    window: deque[tuple[T, Callable[[], R] | None]] = deque()
    for item, work in jobs:
        window.append((item, pool.submit(work).result if work is not None else None))
        if len(window) > width:
            yield window.popleft()
    while window:
        yield window.popleft()
