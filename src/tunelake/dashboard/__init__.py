"""The interactive dashboard (the Power BI role). Reads only: metrics come from `tunelake.analytics.insights`,
dimensions and the analytics/meta tables are read directly, and nothing here can write to the warehouse.

`Warehouse` keeps one read-only DuckDB connection per warehouse file and hands each request its own cursor, so
concurrent Dash callbacks never share a cursor, and a build that switches CURRENT.json is picked up on the next
request without restarting the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from tunelake.config import Config

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


class Warehouse:
    """A cached read-only connection to the current warehouse file that follows the CURRENT.json pointer."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._file: Path | None = None
        self._mtime: float = -1.0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tables: set[str] = set()
        self._batches: tuple[float, pd.DataFrame] | None = None
        self._cache: dict[tuple[str, str, str, str], pd.DataFrame] = {}

    def _pointer_state(self) -> tuple[Path, float]:
        from tunelake.warehouse.engine import POINTER, current_warehouse_file

        pointer = self.cfg.warehouse_dir / POINTER
        mtime = pointer.stat().st_mtime if pointer.exists() else -1.0
        if self._file is not None and mtime == self._mtime:
            return self._file, mtime
        return current_warehouse_file(self.cfg), mtime

    def _base(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            path, mtime = self._pointer_state()
            if self._con is None or path != self._file:
                from tunelake.warehouse.engine import open_warehouse

                old = self._con
                self._con = open_warehouse(self.cfg, read_only=True)
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

    def batches(self) -> pd.DataFrame:
        """The lake manifest's import batches, re-read when the warehouse pointer changes (a rebuild follows every
        import that matters), so the quality page does not list the lake on every request."""
        self._base()
        with self._lock:
            if self._batches is None or self._batches[0] != self._mtime:
                from dataclasses import asdict

                from tunelake.lake.manifest import list_batches
                from tunelake.lake.store import Lake

                rows = []
                for b in list_batches(Lake(self.cfg.lake)):
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


@dataclass(frozen=True)
class FilterState:
    """What the filter bar holds, as JSON-safe values (the dcc.Store content)."""

    start: str | None = None
    end: str | None = None
    user: str | None = None  # a user key as a string (64-bit keys do not survive JavaScript numbers)
    segment: int | None = None

    @classmethod
    def from_store(cls, data: dict[str, Any] | None) -> FilterState:
        data = data or {}
        user, segment = data.get("user"), data.get("segment")
        return cls(data.get("start") or None, data.get("end") or None,
                   None if user in (None, "") else str(user), None if segment in (None, "") else int(segment))

    def to_filters(self) -> Any:
        """The metric layer's Filters for this state."""
        from tunelake.analytics.insights import Filters

        return Filters(
            start=date.fromisoformat(self.start) if self.start else None,
            end=date.fromisoformat(self.end) if self.end else None,
            user_keys=(int(self.user),) if self.user is not None else None,
            segment=self.segment,
        )


# --- summaries shared with the report (plain pandas, so the report does not need Dash) ---------------------------


def profile_summary(prof: pd.DataFrame, top: int = 4) -> pd.DataFrame:
    """One row per segment from segment_profile: size, share and its most distinctive features (largest |z|)."""
    rows = []
    for (seg, name), part in prof.groupby(["segment", "segment_name"], sort=True):
        part = part.reindex(part["z_score"].abs().sort_values(ascending=False).index).head(top)
        traits = ", ".join(f"{f} {z:+.1f}σ" for f, z in zip(part["feature"], part["z_score"], strict=True))
        rows.append({"segment": int(seg), "name": name, "listeners": int(part["size"].iloc[0]),
                     "share": float(part["share"].iloc[0]), "most distinctive (z-score)": traits})
    return pd.DataFrame(rows)


def gate_summary(quality: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last run's quality gates: one row per check (tables checked, passed, not passed, failing rows) with
    problems first, and the individual results that did not pass."""
    if quality.empty:
        return quality, quality
    if "run_id" in quality.columns and "checked_at" in quality.columns:
        last = quality.sort_values("checked_at")["run_id"].iloc[-1]
        quality = quality[quality["run_id"] == last]
    q = quality.assign(check=quality["check_name"].astype(str).str.split(":").str[0],
                       ok=quality["status"].astype(str).str.lower().isin(["pass", "ok", "passed"]))
    summary = q.groupby("check", sort=True).agg(tables=("table_name", "nunique"), passed=("ok", "sum"),
                                                not_passed=("ok", lambda s: int((~s).sum())),
                                                failing_rows=("failing_rows", "sum")).reset_index()
    summary = summary.sort_values(["not_passed", "check"], ascending=[False, True]).reset_index(drop=True)
    summary = summary.astype({"passed": int, "not_passed": int, "failing_rows": int})
    failed = q.loc[~q["ok"], ["check_name", "table_name", "status", "failing_rows"]
                   + (["sample_keys"] if "sample_keys" in q.columns else [])]
    return summary, failed.reset_index(drop=True)
