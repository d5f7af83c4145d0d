"""The interactive dashboard (the Power BI role). Reads only: metrics come from `tunelake.analytics.insights`,
dimensions and the analytics/meta tables are read directly, and nothing here can write to the warehouse.

`Warehouse` keeps one read-only DuckDB connection per warehouse file and hands each request its own cursor, so
concurrent Dash callbacks never share a cursor, and a build that switches CURRENT.json is picked up on the next
request without restarting the server.
"""

from __future__ import annotations

import re
import reprlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from tunelake.errors import InputError
from tunelake.workspace import Workspace

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


class Warehouse:
    """A cached read-only connection to the current warehouse file that follows the CURRENT.json pointer."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lock = threading.Lock()
        self._file: Path | None = None
        self._mtime: float = -1.0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tables: set[str] = set()
        self._batches: tuple[float, pd.DataFrame] | None = None
        self._cache: dict[tuple[str, str, str, str], pd.DataFrame] = {}
        self._keysets: dict[tuple[str, str, str], frozenset[int]] = {}

    def _pointer_state(self) -> tuple[Path, float]:
        from tunelake.warehouse.store import POINTER, current_warehouse_file

        pointer = self.ws.warehouse_dir / POINTER
        mtime = pointer.stat().st_mtime if pointer.exists() else -1.0
        if self._file is not None and mtime == self._mtime:
            return self._file, mtime
        return current_warehouse_file(self.ws), mtime

    def _base(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            path, mtime = self._pointer_state()
            if self._con is None or path != self._file:
                from tunelake.warehouse.store import open_warehouse

                old = self._con
                self._con = open_warehouse(self.ws, read_only=True)
                self._file, self._mtime = path, mtime
                self._cache = {}
                self._tables = {r[0] for r in self._con.execute(
                    "SELECT table_name FROM information_schema.tables").fetchall()}
                if old is not None:
                    old.close()
            self._mtime = mtime
            return self._con

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A per-request cursor (DuckDB connections are not safe to share across threads; cursors are)."""
        cur = self._base().cursor()
        cur.execute("SET TimeZone = 'UTC'")
        try:
            yield cur
        finally:
            cur.close()

    def current_file(self) -> str:
        """The warehouse file requests are answered from now (checks the pointer, reopening if it moved)."""
        self._base()
        return str(self._file)

    def has(self, table: str) -> bool:
        self._base()
        return table in self._tables

    def table(self, name: str, columns: str = "*", order: str = "") -> pd.DataFrame:
        """A whole small table (dimension, analytics, meta), empty when the step that writes it has not run yet.

        Cached per warehouse file: a file never changes once the pointer names it (builds and analytics steps
        write a new file and switch the pointer), so the cache is exact, and it is dropped with the file."""
        self._base()
        key = (str(self._file), name, columns, order)
        cached = self._cache.get(key)
        if cached is None:
            if name not in self._tables:
                cached = pd.DataFrame()
            else:
                with self.cursor() as cur:
                    cached = cur.execute(f"SELECT {columns} FROM {name} {'ORDER BY ' + order if order else ''}").df()
            self._cache[key] = cached
        return cached.copy()

    def user_keys(self) -> frozenset[int]:
        """Every listener's key in the current file (what the listener filter may name)."""
        return self._keys("dim_user", "user_key")

    def segments(self) -> frozenset[int]:
        """Every segment in the current file; empty until segmentation has run."""
        return self._keys("user_segment", "segment")

    def _keys(self, table: str, column: str) -> frozenset[int]:
        """Cached per file like `table`, as a set: every callback checks its filters against it."""
        self._base()
        key = (str(self._file), table, column)
        keys = self._keysets.get(key)
        if keys is None:
            df = self.table(table, f"DISTINCT {column}")
            keys = frozenset(int(k) for k in df[column]) if not df.empty else frozenset()
            self._keysets = {k: v for k, v in self._keysets.items() if k[0] == key[0]} | {key: keys}
        return keys

    def batches(self) -> pd.DataFrame:
        """The lake manifest's import batches, re-read when the warehouse pointer changes (a rebuild follows every
        import that matters), so the quality page does not list the lake on every request."""
        self._base()
        with self._lock:
            if self._batches is None or self._batches[0] != self._mtime:
                from dataclasses import asdict

                from tunelake.lake.manifest import list_batches

                rows = []
                for b in list_batches(self.ws.lake):
                    row = asdict(b)
                    row["quarantined_total"] = b.quarantined_total
                    rows.append(row)
                cols = ["batch_id", "source", "handle", "user_key", "name", "imported_at", "read", "accepted",
                        "duplicates", "merged", "quarantined", "quarantined_total", "excluded"]
                df = pd.DataFrame(rows, columns=None if rows else cols)
                self._batches = (self._mtime, df)
            return self._batches[1]

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
                self._file = None


# --- global filters --------------------------------------------------------------------------------------------


class FilterError(InputError):
    """A filter value the dashboard's own controls cannot produce (a crafted request, or a listener or segment
    this warehouse does not have). The app answers it with a short 400 and logs one line, never a traceback:
    it is the caller's mistake, not the server's."""


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")  # exactly what <input type=date> sends; fromisoformat takes far more
_INT = re.compile(r"-?\d{1,19}")
_INT64 = range(-(2**63), 2**63)
STORE_KEYS = ("start", "end", "user", "segment")


def _shown(value: Any) -> str:
    """A short echo of a rejected value (reprlib stops after a few items, so a 100k-item list costs nothing)."""
    text = reprlib.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_date(value: Any, field: str) -> str | None:
    """A local calendar date as YYYY-MM-DD, or None for an empty control."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise FilterError(f"must be a date YYYY-MM-DD, got {_shown(value)}", field=field)
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise FilterError(f"is not a calendar date: {_shown(value)}", field=field) from None


def parse_key(value: Any, field: str) -> int | None:
    """A 64-bit integer key, given as an integer or its decimal string (user keys travel as strings because
    JavaScript numbers cannot hold them), or None for an empty control."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FilterError(f"must be an integer key, got {_shown(value)}", field=field)
    if isinstance(value, str) and not _INT.fullmatch(value):
        raise FilterError(f"must be an integer key, got {_shown(value)}", field=field)
    key = int(value)
    if key not in _INT64:
        raise FilterError(f"is out of range for a key: {_shown(value)}", field=field)
    return key


@dataclass(frozen=True)
class FilterState:
    """What the filter bar holds, as JSON-safe values (the dcc.Store content). Every value that arrives in a
    request goes through `parse` (the controls) or `from_store` (the store), so it is checked once, here."""

    start: str | None = None
    end: str | None = None
    user: str | None = None  # a user key as a string (64-bit keys do not survive JavaScript numbers)
    segment: int | None = None
    # who asks (an analytics.insights.Viewer), set by the server from the session, never from the request;
    # None is the single-user dashboard: everyone's data
    viewer: Any = None

    def store(self) -> dict[str, Any]:
        """The JSON-safe filter values (the dcc.Store content); the viewer is not one of them."""
        return {k: getattr(self, k) for k in STORE_KEYS}

    @classmethod
    def parse(cls, start: Any = None, end: Any = None, user: Any = None, segment: Any = None) -> FilterState:
        """The state for these control values; FilterError when one is not what the controls can send."""
        user_key = parse_key(user, "user")
        return cls(parse_date(start, "start"), parse_date(end, "end"),
                   None if user_key is None else str(user_key), parse_key(segment, "segment"))

    @classmethod
    def from_store(cls, data: Any) -> FilterState:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise FilterError(f"the filter store must be an object, got {_shown(data)}", field="filters")
        unknown = [k for k in data if k not in STORE_KEYS]
        if unknown:
            raise FilterError(f"unknown filter {_shown(unknown[0])}", field="filters")
        return cls.parse(*(data.get(k) for k in STORE_KEYS))

    def checked(self, wh: Warehouse, viewer: Any = None) -> FilterState:
        """Self for `viewer` (None: everyone), once the listener and the segment exist in the warehouse answering
        now (a filter on something that does not exist is a crafted request, not an empty selection). A listener's
        viewer may filter on nobody but themselves, and on no segment: `NotAllowed` (403), never another's data."""
        if viewer is not None and not viewer.is_admin:
            from dataclasses import replace

            from tunelake.analytics.insights import NotAllowed

            if self.segment is not None:
                raise NotAllowed("segments are shown to admins only")
            if self.user is not None and int(self.user) != viewer.user_key:
                raise NotAllowed("a listener sees only their own data")
            return replace(self, viewer=viewer)
        if self.user is not None and int(self.user) not in wh.user_keys():
            raise FilterError(f"no listener with key {self.user}", field="user")
        if self.segment is not None and self.segment not in wh.segments():
            raise FilterError(f"no segment {self.segment}", field="segment")
        return self

    def to_filters(self) -> Any:
        """The metric layer's Filters for this state."""
        from tunelake.analytics.insights import ADMIN, Filters

        return Filters(
            start=date.fromisoformat(self.start) if self.start else None,
            end=date.fromisoformat(self.end) if self.end else None,
            user_keys=(int(self.user),) if self.user is not None else None,
            segment=self.segment,
            viewer=self.viewer if self.viewer is not None else ADMIN,
        )


def clicked(click: Any, items: int) -> list[Any] | None:
    """The customdata of the first clicked point (None when the point has none, e.g. a line without keys), from
    a Plotly clickData value; FilterError for a shape Plotly never sends for our charts (customdata with fewer
    than `items` values), so a crafted click is refused like a crafted filter."""
    if not click:
        return None
    points = click.get("points") if isinstance(click, dict) else None
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points[:1]):
        raise FilterError(f"not a Plotly click: {_shown(click)}", field="clickData")
    data = points[0].get("customdata") if points else None
    if data is not None and not (isinstance(data, list) and len(data) >= items):
        raise FilterError(f"expected customdata with {items}+ values, got {_shown(data)}", field="clickData")
    return data


# --- summaries shared with the report (plain pandas, so the report does not need Dash) ---------------------------
