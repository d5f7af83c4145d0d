"""The warehouse engines and how the settings pick one: DuckDB (embedded default) and Spark (optional extra)."""

from __future__ import annotations

from pathlib import Path

from tunelake.errors import TunelakeError
from tunelake.warehouse.engines.base import Engine
from tunelake.warehouse.engines.duckdb import DuckDBEngine
from tunelake.workspace import Workspace

ENGINES = ("duckdb", "spark")


def engine_class(ws: Workspace) -> type[Engine]:
    """The engine named by the config (duckdb by default)."""
    if ws.settings.engine == "spark":
        try:
            from tunelake.warehouse.engines.spark import SparkEngine  # optional extra
        except ImportError as exc:
            raise TunelakeError(
                f"the Spark engine needs pyspark ({exc})", hint="pip install 'tunelake[spark]' and install Java 17"
            ) from None
        return SparkEngine
    return DuckDBEngine


def make_engine(ws: Workspace, path: str | Path) -> Engine:
    cls = engine_class(ws)
    if cls is DuckDBEngine:
        return DuckDBEngine(path, memory_limit=ws.settings.duckdb_memory_limit, threads=ws.settings.duckdb_threads,
                            temp_dir=str(ws.warehouse_dir / "spill"))
    return cls(ws, path)  # type: ignore[call-arg]


__all__ = ["ENGINES", "DuckDBEngine", "Engine", "engine_class", "make_engine"]
