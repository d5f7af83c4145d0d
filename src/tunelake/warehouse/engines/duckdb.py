"""The embedded engine: one DuckDB file, no server (the default)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tunelake.duck import arrow_of
from tunelake.warehouse.engines.base import Engine, cast_select
from tunelake.warehouse.tables import Table

DUCKDB_MACROS: dict[str, Callable[..., str]] = {
    "ts_ms": lambda x: f"epoch_ms(CAST({x} AS TIMESTAMP))",  # TIMESTAMP → ms since epoch
    "ms_ts": lambda x: f"make_timestamp(CAST({x} AS BIGINT) * 1000)",  # ms since epoch → TIMESTAMP
    "to_local": lambda ts, tz: f"timezone({tz}, timezone('UTC', {ts}))",  # UTC TIMESTAMP → local TIMESTAMP
    "isodow": lambda x: f"isodow({x})",
    "day_name": lambda x: f"dayname({x})",
    # One DATE row per day from lo to hi. Spark cannot nest its generator in a CAST, so the cast is inside.
    "date_series": lambda lo, hi: (
        f"CAST(unnest(generate_series(CAST({lo} AS TIMESTAMP), CAST({hi} AS TIMESTAMP), INTERVAL 1 DAY)) AS DATE)"
    ),
    "surrogate": lambda x: f"('x' || substr(md5({x}), 1, 21))",
}


class DuckDBEngine(Engine):
    """Embedded default: one DuckDB file, no server."""

    name = "duckdb"
    macros = DUCKDB_MACROS
    incremental = True

    def __init__(self, path: str | Path = ":memory:", *, read_only: bool = False, memory_limit: str = "",
                 threads: int = 0, temp_dir: str | None = None) -> None:
        self.path = str(path)
        self.con = duckdb.connect(self.path, read_only=read_only)
        self.con.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if temp_dir and not read_only:
            self.con.execute(f"SET temp_directory = '{temp_dir}'")
        self.con.execute("SET preserve_insertion_order = false")
        self._filesystems: set[str] = set()
        self._scratch_dir = temp_dir or (str(Path(self.path).parent) if self.path != ":memory:" else None)
        self._scratch: str | None = None

    def register_parquet(self, view: str, uris: list[str], schema: pa.Schema) -> None:
        if not uris:
            self.register_arrow(view, schema.empty_table())
            return
        for uri in uris:
            self.use_filesystem(uri)
        files = ", ".join("'" + u.replace("'", "''") + "'" for u in uris)
        source = f"read_parquet([{files}], union_by_name = true)"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source}")
        # Files written before a column existed (every file of a lake older than the column) read it as null,
        # as Spark's declared-schema read does, so the models can name every column of the schema.
        have = {r[0] for r in self.con.execute(f"DESCRIBE {view}").fetchall()}
        missing = [f for f in schema if f.name not in have]
        if missing:
            nulls = ", ".join(f"CAST(NULL AS {_duck_type(f.type)}) AS \"{f.name}\"" for f in missing)
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT *, {nulls} FROM {source}")

    def use_filesystem(self, uri: str) -> None:
        """Let DuckDB read a lake URL through the lake's fsspec filesystem (az://, abfs://: adlfs), since DuckDB's
        own azure extension may not be installable where tunelake runs."""
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme and scheme not in ("file", "local") and scheme not in self._filesystems:
            from tunelake.lake.store import Lake

            fs = Lake(uri).fs
            self.con.register_filesystem(fs)
            protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
            self._filesystems.update(protocols, {scheme})

    def register_arrow(self, view: str, table: pa.Table) -> None:
        self.con.register(f"_arrow_{view}", table)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM _arrow_{view}")

    def materialize(self, name: str, select_sql: str, spec: Table | None = None, temp: bool = False) -> int:
        sql = cast_select(select_sql, spec, lambda c: c.sql_type("duckdb")) if spec else select_sql
        if temp and self._scratch_dir:
            # Intermediates go to a scratch database file, not TEMP tables: DuckDB keeps temporary tables
            # uncompressed, so at 100M plays int_plays_local spilled more than 55 GB to disk; a database table is
            # stored compressed. The file is deleted when the engine closes.
            self.con.execute(f"CREATE OR REPLACE TABLE {self._scratch_db()}.{name} AS {sql}")
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM _scratch.{name}")
        else:
            if spec and not temp:
                sql = spec.ordered(sql)
            self.con.execute(f"CREATE OR REPLACE {'TEMP TABLE' if temp else 'TABLE'} {name} AS {sql}")
        return self.con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]

    def _scratch_db(self) -> str:
        if self._scratch is None:
            Path(self._scratch_dir).mkdir(parents=True, exist_ok=True)
            self._scratch = str(Path(self._scratch_dir) / f"scratch-{uuid.uuid4().hex[:12]}.duckdb")
            self.con.execute(f"ATTACH '{self._scratch}' AS _scratch")
        return "_scratch"

    @property
    def serving(self) -> duckdb.DuckDBPyConnection:
        return self.con

    def query(self, sql: str) -> pa.Table:
        return arrow_of(self.con.sql(sql))

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def close(self) -> None:
        self.con.close()
        if self._scratch:
            for suffix in ("", ".wal"):
                Path(self._scratch + suffix).unlink(missing_ok=True)
            self._scratch = None


def _duck_type(t: pa.DataType) -> str:
    """The DuckDB type of an Arrow type of the curated schemas."""
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    return {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.int16(): "SMALLINT",
            pa.bool_(): "BOOLEAN", pa.float64(): "DOUBLE", pa.date32(): "DATE"}.get(t, "VARCHAR")
