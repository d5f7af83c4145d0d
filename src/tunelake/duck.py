"""DuckDB plumbing every layer shares: the in-process cursor pool, the import's thread count, Arrow helpers.

It sits at the bottom so that sources, curate and warehouse all use one copy of it without importing each other.
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from typing import Any

import duckdb
import pyarrow as pa

# DuckDB 2.0 warns that a statement's Arrow output copies the rows once; for the import's many small queries that
# copy is cheaper than the relation API, which plans the query a second time to describe it (~3.5 ms per query).
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)

_DB: duckdb.DuckDBPyConnection | None = None
_DB_LOCK = threading.Lock()
_THREADS: int = 0  # 0: all cores
_CONNECTIONS: weakref.WeakSet = weakref.WeakSet()


def arrow_of(result: Any) -> pa.Table:
    """DuckDB's .arrow() returns a table in some versions and a record-batch reader in others."""
    out = result.arrow()
    return out.read_all() if hasattr(out, "read_all") else out


def execute_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run one statement and take its rows as Arrow: planned once (see above)."""
    return con.execute(sql).to_arrow_table()


def import_threads() -> int:
    """DuckDB threads for import work: one per process when a parallel import runs a process per core (more
    would only fight over the same cores), all cores otherwise (setting import_threads)."""
    return _THREADS or os.cpu_count() or 1


def set_import_threads(n: int) -> None:
    """Change the import's thread count (0: all cores) for this process, connections already open included."""
    global _THREADS
    _THREADS = max(0, int(n))
    for con in list(_CONNECTIONS):
        con.execute(f"SET threads = {import_threads()}")


def import_connection(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Give a connection the import's thread count, now and whenever it changes."""
    con.execute(f"SET threads = {import_threads()}")
    _CONNECTIONS.add(con)
    return con


def cursor() -> duckdb.DuckDBPyConnection:
    """A fresh cursor on one in-process DuckDB: opening a database costs 30–70 ms, a cursor well under 1 ms, and
    each cursor has its own registered tables, so imports of many small files do not pay the open each time."""
    global _DB
    with _DB_LOCK:
        if _DB is None:
            _DB = import_connection(duckdb.connect())
    return _DB.cursor()
