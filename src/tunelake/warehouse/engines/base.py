"""The engine interface the SQL models run on. Models are portable SELECTs rendered with Jinja; the few functions
whose spelling differs between engines are each engine's macros. Every engine session runs in UTC.

An engine also serves: `serving` is the DuckDB connection of the warehouse file the build writes, which is what
readers will see (for Spark too, which loads what it computed into that file). Quality gates, the run log and the
analytics steps use it, on every engine, with no probing of what an engine is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from tunelake.warehouse.tables import Table


class Engine(ABC):
    """What a warehouse engine offers the build: views over curated data, materialised models, queries."""

    name: str
    macros: dict[str, Callable[..., str]]
    # Whether a build may start from a copy of the current file and recompute only what changed
    # (`warehouse.incremental`); the engine's SQL must then run on the serving file's own connection.
    incremental: bool = False

    @abstractmethod
    def register_parquet(self, view: str, uris: list[str], schema: pa.Schema) -> None: ...

    @abstractmethod
    def register_arrow(self, view: str, table: pa.Table) -> None: ...

    @abstractmethod
    def materialize(self, name: str, select_sql: str, spec: Table | None = None, temp: bool = False) -> int: ...

    @abstractmethod
    def query(self, sql: str) -> pa.Table: ...

    @abstractmethod
    def execute(self, sql: str, params: Any = None) -> Any: ...

    @property
    @abstractmethod
    def serving(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection of the warehouse file being built (what readers will see once it is current)."""

    @abstractmethod
    def close(self) -> None: ...


def cast_select(select_sql: str, spec: Table, type_of: Callable[[Any], str]) -> str:
    cols = ", ".join(f"CAST({c.name} AS {type_of(c)}) AS {c.name}" for c in spec.columns)
    return f"SELECT {cols} FROM (\n{select_sql}\n) AS model"
