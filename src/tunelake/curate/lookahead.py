"""Parsing the next files while the current one is stored: one listener's big export is a few files of ~100k plays
each, and their parse (DuckDB's JSON reader, which releases the GIL) ran one file after the other on one core. A job
may also be several pieces of work (a big file's parts, its compression), which then run side by side too.

The threads live only as long as one import: each opens its own DuckDB connection (~15 ms) and prepares its parse
statements again (`sources/extended_fast`), which is nothing beside a big export, and a long-running process
(`serve`, `collect`) keeps no idle threads holding connections — nor threads beside a later fork. A worker of a
parallel import asks for width 1 and gets the plain serial loop, with no threads at all."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Work = Callable[[], Any] | Sequence[Callable[[], Any]]


def lookahead(jobs: Iterable[tuple[T, Work | None]], width: int) -> Iterator[tuple[T, Callable[[], Any] | None]]:
    """Each job with a callable giving its work's result (or raising its error), in the jobs' order; the work of up
    to `width` jobs runs in threads ahead of the consumer. Work that is a sequence of callables gives the list of
    their results (raising the first error among them), its pieces run on any of the threads. The jobs iterable
    itself is advanced in the caller's thread (it may read the lake), so only the work must be thread-safe; at most
    `width` + 1 jobs are held at once. A job without work (None) is passed through."""
    if width <= 1:
        for item, work in jobs:
            yield item, (_in_turn(work) if isinstance(work, Sequence) else work)
        return
    pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="tunelake-parse")
    try:
        window: deque[tuple[T, Callable[[], Any] | None]] = deque()
        for item, work in jobs:
            if work is None:
                window.append((item, None))
            elif isinstance(work, Sequence):
                window.append((item, _results([pool.submit(w) for w in work])))
            else:
                window.append((item, pool.submit(work).result))
            if len(window) > width:
                yield window.popleft()
        while window:
            yield window.popleft()
    finally:  # also when the consumer stops early: the parses under way finish, queued ones are dropped
        pool.shutdown(wait=True, cancel_futures=True)


def _in_turn(work: Sequence[Callable[[], Any]]) -> Callable[[], list[Any]]:
    return lambda: [w() for w in work]


def _results(futures: list[Future]) -> Callable[[], list[Any]]:
    return lambda: [f.result() for f in futures]
