"""Parsing the next files while the current one is stored: one listener's big export is a few files of ~100k plays
each, and their parse (DuckDB's JSON reader, which releases the GIL) ran one file after the other on one core.

The threads live only as long as one import: each opens its own DuckDB connection (~15 ms) and prepares its parse
statements again (`sources/extended_fast`), which is nothing beside a big export, and a long-running process
(`serve`, `collect`) keeps no idle threads holding connections — nor threads beside a later fork. A worker of a
parallel import asks for width 1 and gets the plain serial loop, with no threads at all."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def lookahead(jobs: Iterable[tuple[T, Callable[[], R] | None]], width: int
              ) -> Iterator[tuple[T, Callable[[], R] | None]]:
    """Each job with a callable giving its work's result (or raising its error), in the jobs' order; the work of up
    to `width` jobs runs in threads ahead of the consumer. The jobs iterable itself is advanced in the caller's
    thread (it may read the lake), so only the work must be thread-safe; at most `width` + 1 jobs are held at once.
    A job without work (None) is passed through."""
    if width <= 1:
        yield from jobs
        return
    pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="tunelake-parse")
    try:
        window: deque[tuple[T, Callable[[], R] | None]] = deque()
        for item, work in jobs:
            window.append((item, pool.submit(work).result if work is not None else None))
            if len(window) > width:
                yield window.popleft()
        while window:
            yield window.popleft()
    finally:  # also when the consumer stops early: the parses under way finish, queued ones are dropped
        pool.shutdown(wait=True, cancel_futures=True)
