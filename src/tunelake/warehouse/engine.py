"""The engine interface the SQL models run on, and the embedded DuckDB engine.

Models are portable SELECTs rendered with Jinja; the few functions whose spelling differs between engines are
macros defined here, per engine. Every engine session runs in UTC.
"""

from __future__ import annotations

import json
import os
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tunelake.config import Config
from tunelake.errors import TunelakeError
from tunelake.warehouse.tables import Table


def arrow_of(result: Any) -> pa.Table:
    """DuckDB's .arrow() returns a table in some versions and a record-batch reader in others."""
    out = result.arrow()
    return out.read_all() if hasattr(out, "read_all") else out


# DuckDB 2.0 warns that a statement's Arrow output copies the rows once; for the import's many small queries that
# copy is cheaper than the relation API, which plans the query a second time to describe it (~3.5 ms per query).
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)


def execute_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run one statement and take its rows as Arrow: planned once (see above)."""
    return con.execute(sql).to_arrow_table()


class Engine(ABC):
    """What a warehouse engine offers the build: views over curated data, materialised models, queries."""

    name: str
    macros: dict[str, Callable[..., str]]

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

    @abstractmethod
    def close(self) -> None: ...


def _cast_select(select_sql: str, spec: Table, type_of: Callable[[Any], str]) -> str:
    cols = ", ".join(f"CAST({c.name} AS {type_of(c)}) AS {c.name}" for c in spec.columns)
    return f"SELECT {cols} FROM (\n{select_sql}\n) AS model"


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
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_parquet([{files}], union_by_name = true)"
        )

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
        sql = _cast_select(select_sql, spec, lambda c: c.sql_type("duckdb")) if spec else select_sql
        if temp and self._scratch_dir:
            # Intermediates go to a scratch database file, not TEMP tables: DuckDB keeps temporary tables
            # uncompressed, so at 100M plays int_plays_local spilled more than 55 GB to disk; a database table is
            # stored compressed. The file is deleted when the engine closes.
            self.con.execute(f"CREATE OR REPLACE TABLE {self._scratch_db()}.{name} AS {sql}")
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM _scratch.{name}")
        else:
            self.con.execute(f"CREATE OR REPLACE {'TEMP TABLE' if temp else 'TABLE'} {name} AS {sql}")
        return self.con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]

    def _scratch_db(self) -> str:
        if self._scratch is None:
            Path(self._scratch_dir).mkdir(parents=True, exist_ok=True)
            self._scratch = str(Path(self._scratch_dir) / f"scratch-{uuid.uuid4().hex[:12]}.duckdb")
            self.con.execute(f"ATTACH '{self._scratch}' AS _scratch")
        return "_scratch"

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


def make_engine(cfg: Config, path: str | Path) -> Engine:
    """The engine named by the config (duckdb by default)."""
    if cfg.engine == "spark":
        try:
            from tunelake.warehouse.spark import SparkEngine  # optional extra
        except ImportError as exc:
            raise TunelakeError(
                f"the Spark engine needs pyspark ({exc})", hint="pip install 'tunelake[spark]' and install Java 17"
            ) from None
        return SparkEngine(cfg, path)
    return DuckDBEngine(path, memory_limit=cfg.duckdb_memory_limit, threads=cfg.duckdb_threads,
                        temp_dir=str(cfg.warehouse_dir / "spill"))


# --- the current warehouse ------------------------------------------------------------------------------------

POINTER = "CURRENT.json"


def read_pointer(cfg: Config) -> dict[str, Any] | None:
    path = cfg.warehouse_dir / POINTER
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_pointer(cfg: Config, info: dict[str, Any]) -> None:
    """Switch readers to a new warehouse file in one atomic rename."""
    path = cfg.warehouse_dir / POINTER
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
    os.replace(tmp, path)


def current_warehouse_file(cfg: Config) -> Path:
    info = read_pointer(cfg)
    if not info:
        raise TunelakeError(f"no warehouse in {cfg.workspace} yet", hint="run `tunelake build` (or `tunelake demo`)")
    return cfg.warehouse_dir / info["file"]


def check_read_only_sql(query: str) -> None:
    """Refuse anything but one read statement, parsed by DuckDB itself: a second statement, COPY, EXPORT,
    ATTACH, INSERT, SET, PRAGMA, INSTALL, CALL … are refused before the query reaches the warehouse (which is
    also opened sandboxed: see `open_warehouse`)."""
    from tunelake.errors import InputError

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InputError(f"SQL error: {str(exc).splitlines()[0]}", field="query") from None
    if len(statements) != 1:
        raise InputError(f"one SQL statement at a time, got {len(statements)}", field="query",
                         hint="run each query on its own")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:  # EXPLAIN ANALYZE would run what it explains
        raise InputError(f"only read-only queries are allowed, not {kind.name}", field="query",
                         hint="SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW or SUMMARIZE")


def open_warehouse(cfg: Config, read_only: bool = True, *, sandboxed: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the current warehouse. Readers open the file the pointer names; a build writes a new file
    and switches the pointer, so a reader never waits for a build and never sees a half-built table.

    A writer prunes files older than the previous one: a reader that read the pointer just before two switches
    in a row finds its file gone, and reads the pointer again. `sandboxed`: for SQL typed by a user — no file
    other than the warehouse may be read or written, no extension loaded, and no setting changed."""
    config = ({"enable_external_access": False, "autoinstall_known_extensions": False,
               "autoload_known_extensions": False} if sandboxed else {})
    for attempt in range(3):
        path = current_warehouse_file(cfg)
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException:
            if path.exists() or attempt == 2:
                raise
    con.execute("SET TimeZone = 'UTC'")
    if sandboxed:
        con.execute("SET lock_configuration = true")
    return con


@contextmanager
def warehouse_writer(cfg: Config, step: str = "write") -> Iterator[duckdb.DuckDBPyConnection]:
    """Change the warehouse without disturbing readers: copy the current file, yield a read-write connection to
    the copy, and switch the pointer to it when the block ends without error (the copy is discarded otherwise).

    Steps that add tables after a build (features, segments, recommendations) write through this.
    """
    import shutil
    from datetime import UTC, datetime

    from tunelake.lake.lock import writing

    with writing(cfg, command=f"write warehouse ({step})"):
        pointer = read_pointer(cfg)
        if not pointer:
            raise TunelakeError(f"no warehouse in {cfg.workspace} yet", hint="run `tunelake build` first")
        src = cfg.warehouse_dir / pointer["file"]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        dst = cfg.warehouse_dir / f"wh-{stamp}.duckdb"
        shutil.copyfile(src, dst)
        con = duckdb.connect(str(dst))
        con.execute("SET TimeZone = 'UTC'")
        try:
            yield con
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            remove_warehouse_file(dst)
            raise
        con.close()
        write_pointer(cfg, {**pointer, "file": dst.name, "updated_by": step, "previous": src.name})
        prune_warehouse_files(cfg)


def remove_warehouse_file(path: Path) -> None:
    """Delete a warehouse file with its write-ahead log: a stale .wal left beside a name would be replayed into
    whatever file later takes that name."""
    path.unlink(missing_ok=True)
    Path(str(path) + ".wal").unlink(missing_ok=True)


def prune_warehouse_files(cfg: Config) -> list[str]:
    """Drop every warehouse file but the current one and the previous one (which a reader may still hold), and
    what a stopped writer left: files it was building, scratch files, a pointer it was writing. Only a holder of
    the workspace lock calls this, so no other process is writing any of them. Returns the names removed."""
    pointer = read_pointer(cfg) or {}
    keep = {pointer.get("file"), pointer.get("previous")}
    removed = []
    for path in sorted(cfg.warehouse_dir.glob("wh-*.duckdb")):
        if path.name not in keep:
            remove_warehouse_file(path)
            removed.append(path.name)
    for path in sorted(cfg.warehouse_dir.glob("wh-*.duckdb.wal")):
        if path.name[: -len(".wal")] not in keep:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    for pattern in ("spill/*", f"{Path(POINTER).stem}.tmp-*"):  # scratch files and DuckDB's spill
        for path in sorted(cfg.warehouse_dir.glob(pattern)):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path.name)
    return removed
