"""One extended-history file parsed as parts, side by side: DuckDB reads a JSON array with one thread, so a listener
whose export is one or a few big files (100k plays, 80 MB each) kept one core idle while the last file was read.

The file's bytes are cut between two records into arrays of their own; each part goes through the fast parse
(`sources/extended_fast`) on its own thread, and the parts' rows and quarantine are put back together with the
record numbers of the whole file. Whenever that cannot give exactly what parsing the whole file gives — no clean cut,
a part the fast path refuses, parts of different layouts — the whole file is parsed as before, so the result never
depends on where, or whether, the file was cut."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from tunelake.sources.export import EXTENDED_FIELDS, parse_extended
from tunelake.sources.extended_fast import parse_extended_fast
from tunelake.sources.types import Parsed

# Below this size a part costs more in planning and stitching (~7 ms) than it saves.
MIN_PART_BYTES = 4 << 20
# Between two records: '}' ',' '{' with only white space around the comma. A raw newline never occurs inside a JSON
# string, so a newline in that white space puts the comma outside every string; that it also lies between two
# top-level records, not two objects nested in one, is proved afterwards: a cut anywhere else leaves brackets
# unbalanced in both parts, and the parse of such a part fails.
_BETWEEN = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")
_LOOK = 1 << 20  # how far past a target offset a cut is looked for


def cut_points(data: bytes, parts: int, min_part: int = MIN_PART_BYTES) -> list[tuple[int, int]] | None:
    """Where `data` (a JSON array of objects) is cut into up to `parts` arrays of consecutive records, each at least
    `min_part` bytes: [(start, end)] of each part's records; None when the file is too small to cut or no clean cut
    is found near a target."""
    parts = min(parts, len(data) // max(min_part, 1))
    if parts < 2 or not data[:4096].lstrip().startswith(b"["):
        return None
    cuts: list[tuple[int, int]] = []  # (end of a part: after its last '}', start of the next: its first '{')
    for i in range(1, parts):
        at = max(len(data) * i // parts, cuts[-1][1] if cuts else 0)
        for m in _BETWEEN.finditer(data, at, min(len(data), at + _LOOK)):
            if b"\n" in m.group():
                cuts.append((m.start() + 1, m.end() - 1))
                break
        else:
            return None
    bounds = [0, *(c for cut in cuts for c in cut), len(data)]
    return list(zip(bounds[::2], bounds[1::2], strict=True))


def piece(data: bytes, start: int, end: int) -> bytes:
    """The records in data[start:end] as an array of their own: one copy (a part's thread makes it, ~10 ms per
    40 MB), the first part keeping the file's '[' and the last its ']'."""
    head = b"[" if start else b""
    tail = b"]" if end < len(data) else b""
    return b"".join((head, memoryview(data)[start:end], tail))


def join_parts(parsed: list[Parsed | None]) -> Parsed | None:
    """The parts' results as the whole file's: rows and quarantine in file order, record numbers counted over the
    whole file. None when a part was refused or the parts disagree on the layout (the whole file decides then)."""
    if not parsed or any(p is None for p in parsed):
        return None
    done: list[Parsed] = [p for p in parsed if p is not None]
    formats = {p.file_format for p in done}
    schemas = {p.rows.schema for p in done}
    if len(formats) != 1 or len(schemas) != 1 or any(p.details for p in done):
        return None
    tables, quarantine, offset = [], [], 0
    for p in done:
        rows = p.rows
        at = rows.column_names.index("record_no")
        tables.append(rows.set_column(at, "record_no", pc.add(rows["record_no"], pa.scalar(offset, pa.int32()))))
        quarantine += [{**q, "record_no": q["record_no"] + offset} for q in p.quarantine]
        offset += p.read
    unknown = set().union(*(p.unknown_fields for p in done))
    return Parsed(pa.concat_tables(tables), offset, quarantine, unknown, formats.pop())


def parse_in_parts(data: bytes, name: str, parts: int, *, user_key: int | None = None, now: datetime | None = None,
                   min_part: int = MIN_PART_BYTES
                   ) -> tuple[list[Callable[[], Parsed | None]], Callable[[list[Parsed | None]], Parsed]]:
    """The work of parsing one extended-history file as (jobs, finish): the jobs may run on any threads, `finish`
    takes their results in order and gives the whole file's `Parsed` (`parse_extended` of the whole file when the
    parts cannot stand for it, or when the file is not cut: then the one job parses it whole). One `now` for every
    part, so a play at the edge of "in the future" is judged alike wherever the cut falls."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    cuts = cut_points(data, parts, min_part)

    def whole(_: list[Parsed | None] | None = None) -> Parsed:
        return parse_extended(data, name, now=now, user_key=user_key)

    if cuts is None:
        return [lambda: whole()], lambda results: results[0]

    def part(start: int, end: int) -> Callable[[], Parsed | None]:
        def run() -> Parsed | None:
            try:
                return parse_extended_fast(piece(data, start, end), name, EXTENDED_FIELDS, now=now, user_key=user_key)
            except (UnicodeError, ValueError, OverflowError):
                return None
        return run

    def finish(results: list[Parsed | None]) -> Parsed:
        return join_parts(results) or whole()

    return [part(start, end) for start, end in cuts], finish
