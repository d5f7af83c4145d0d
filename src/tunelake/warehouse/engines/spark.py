"""The Spark engine: the same SQL models, run by Spark SQL (local mode here, a cluster in Synapse or Databricks).

Spark builds and DuckDB serves. Every warehouse table a model produces is written by Spark as Parquet under
`<warehouse_dir>/spark/<stamp>/<table>/` and then loaded into the DuckDB serving file the build was asked to write
(`wh-<stamp>.duckdb`), which the CURRENT pointer switches to as after any build. So the dashboard, `tunelake sql`,
the exports and the analytics steps read a Spark-built warehouse exactly as they read a DuckDB-built one, and the
parity suite can compare the two files table by table.

Division of labour inside one build:
- `materialize` runs each model on Spark, writes it as Parquet that later models read back (the `int_*` ones under
  `_int/`, deleted after the build) and loads each warehouse table into the serving file;
- `register_parquet` and `register_arrow` declare the curated views on both sides: Spark's for the models, the
  serving file's for the checks;
- `query`, `execute` and `con` are the DuckDB serving file, i.e. the warehouse readers will see: quality gates,
  the run log and analytics steps check and extend what is served, in milliseconds rather than in Spark jobs.
  `spark_query` asks Spark itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tunelake.errors import TunelakeError
from tunelake.warehouse.engines.base import Engine, cast_select
from tunelake.warehouse.engines.duckdb import DuckDBEngine
from tunelake.warehouse.tables import Table
from tunelake.workspace import Workspace

INSTALL_HINT = "pip install 'tunelake[spark]' and install Java 17 (apt-get install openjdk-17-jre-headless)"

SPARK_MACROS: dict[str, Callable[..., str]] = {
    "ts_ms": lambda x: f"unix_millis({x})",
    "ms_ts": lambda x: f"timestamp_millis(CAST({x} AS BIGINT))",
    "to_local": lambda ts, tz: f"from_utc_timestamp({ts}, {tz})",
    # dayofweek is 1 = Sunday … 7 = Saturday; ISO is 1 = Monday … 7 = Sunday.
    "isodow": lambda x: f"((dayofweek({x}) + 5) % 7 + 1)",
    "day_name": lambda x: f"date_format({x}, 'EEEE')",
    "date_series": lambda lo, hi: f"explode(sequence(CAST({lo} AS DATE), CAST({hi} AS DATE), INTERVAL 1 DAY))",
    "surrogate": lambda x: f"('x' || substr(md5({x}), 1, 21))",
}

# Arrow types of the curated zone → Spark SQL types, for the casts that pin each view's schema.
_ARROW_TO_SPARK = [
    (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_int8, "TINYINT"),
    (pa.types.is_int16, "SMALLINT"),
    (pa.types.is_int32, "INT"),
    (pa.types.is_int64, "BIGINT"),
    (pa.types.is_floating, "DOUBLE"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "STRING"),
]

_AZURE_SCHEMES = ("az", "abfs", "abfss")

# Local mode's shuffle partitions: 4 keeps a small build (the tests) fast; a big one gets one per PARTITION_BYTES of
# curated Parquet, so that no task holds much of the play history at once. It decodes to ~1.8× its Parquet bytes:
# with 4 partitions at 10M plays each partition of int_plays_local came to ~300 MB, and a 3 GB driver ran out of
# heap. AQE coalesces what turns out small. The setting spark_shuffle_partitions (or spark.sql.shuffle.partitions
# in spark_conf) pins the count instead.
MIN_PARTITIONS = 4
PARTITION_BYTES = 32 * 1024**2
INTERMEDIATE = "_int"  # where the `int_*` models are written, under the build's output; deleted when it closes


def spark_type(t: pa.DataType) -> str:
    for test, name in _ARROW_TO_SPARK:
        if test(t):
            return name
    raise TunelakeError(f"no Spark type for Arrow type {t}")


def hadoop_uri(uri: str, lake_url: str, account: str | None = None) -> str:
    """adlfs spells a blob `az://container/path`; hadoop-azure (Synapse, Databricks) wants
    `abfss://container@account.dfs.core.windows.net/path`. The account comes from the lake URL when it names one,
    else from `account` or AZURE_STORAGE_ACCOUNT_NAME."""
    scheme, _, rest = uri.partition("://")
    if scheme not in _AZURE_SCHEMES:
        return uri
    container, _, path = rest.partition("/")
    if "@" in container:
        return f"abfss://{rest}"
    m = re.search(r"@([^/]+)", lake_url)
    host = m.group(1) if m else f"{account or os.environ.get('AZURE_STORAGE_ACCOUNT_NAME', '')}.dfs.core.windows.net"
    return f"abfss://{container}@{host}/{path}"


def shuffle_partitions(input_bytes: int, pinned: int = 0) -> int:
    """Shuffle partitions for a build reading `input_bytes` of curated Parquet (see PARTITION_BYTES); `pinned`
    (setting spark_shuffle_partitions) wins when set."""
    if pinned:
        return max(1, int(pinned))
    return max(MIN_PARTITIONS, math.ceil(input_bytes / PARTITION_BYTES))


def _quote(path: str) -> str:
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


_SESSION: Any = None


def spark_session(master: str = "local[*]", conf: dict[str, str] | None = None, driver_memory: str = "2g") -> Any:
    """The process's SparkSession, started once (a JVM start costs seconds); each engine takes a child session of
    it so temporary views never leak between builds."""
    global _SESSION
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise TunelakeError(f"the Spark engine needs pyspark ({exc})", hint=INSTALL_HINT) from None
    if _SESSION is not None and not _SESSION.sparkContext._jsc.sc().isStopped():
        return _SESSION
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise TunelakeError("the Spark engine needs Java, and none was found", hint=INSTALL_HINT)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON") or _python())
    local = master.startswith("local")
    builder = (
        SparkSession.builder.appName("tunelake")
        .master(master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.ansi.enabled", "false")  # DuckDB semantics: overflow/invalid casts are not what we test
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Duser.timezone=UTC -Dlog4j2.configurationFile={_log_config()}")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.warehouse.dir", str(Path(os.environ.get("TMPDIR", "/tmp")) / "tunelake-spark-warehouse"))
    )
    if local:
        builder = (builder.config("spark.sql.shuffle.partitions", str(MIN_PARTITIONS))  # SparkEngine scales it
                   .config("spark.default.parallelism", str(MIN_PARTITIONS))
                   .config("spark.driver.memory", driver_memory)
                   .config("spark.sql.adaptive.enabled", "true"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # JVM did not start: Java missing or broken
        raise TunelakeError(f"could not start Spark ({master}): {str(exc).splitlines()[0][:200]}",
                            hint=INSTALL_HINT) from None
    session.sparkContext.setLogLevel("ERROR")
    _SESSION = session
    return session


LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = spark %p %c{1}: %m%n%ex
"""


def _log_config() -> str:
    """Spark's own logging reduced to errors: its start-up chatter is not for tunelake's users."""
    import tempfile

    path = Path(tempfile.gettempdir()) / "tunelake-spark-log4j2.properties"
    if not path.exists() or path.read_text() != LOG4J2:
        path.write_text(LOG4J2)
    return str(path)


def spark_conf(raw: str) -> dict[str, str]:
    """Extra Spark settings from the spark_conf setting ("key=value,key=value"), e.g. for a cluster's tuning."""
    pairs = [p.split("=", 1) for p in raw.split(",") if "=" in p]
    return {k.strip(): v.strip() for k, v in pairs}


def _python() -> str:
    import sys

    return sys.executable


def stop_spark() -> None:
    """Stop the shared SparkSession (tests and long-lived processes; the CLI just exits)."""
    global _SESSION
    if _SESSION is not None:
        _SESSION.stop()
        _SESSION = None


class SparkEngine(Engine):
    """Spark SQL for the models; a DuckDB file (the `path` the build gives) to serve what they produce."""

    name = "spark"
    macros = SPARK_MACROS

    def __init__(self, ws: Workspace, path: str | Path) -> None:
        self.ws = ws
        self.path = Path(path)
        self.stamp = self.path.stem.removeprefix("wh-")
        self.out_dir = self.path.parent / "spark" / self.stamp
        self.master = str(ws.settings.spark_master or "local[*]")
        self.conf = spark_conf(ws.settings.spark_conf)
        self.spark = spark_session(self.master, self.conf, ws.settings.spark_driver_memory).newSession()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self._served = DuckDBEngine(self.path, memory_limit=ws.settings.duckdb_memory_limit,
                                    threads=ws.settings.duckdb_threads, temp_dir=str(ws.warehouse_dir / "spill"))
        self.con = self._served.con  # the serving file's connection (see `serving`)
        self._views: list[str] = []
        self._native_azure: bool | None = None
        self._input_bytes = 0
        self.output = self._output_root()
        self._staging = self.out_dir / "_input"

    # --- inputs -----------------------------------------------------------------------------------------------
    def register_parquet(self, view: str, uris: list[str], schema: pa.Schema) -> None:
        self._served.register_parquet(view, uris, schema)
        if not uris:
            self.register_arrow(view, schema.empty_table(), serve=False)
            return
        if uris[0].split("://", 1)[0] in _AZURE_SCHEMES and not self._reads_azure():
            if not self.master.startswith("local"):
                self.register_arrow(view, self._read_through_fsspec(uris, schema), serve=False)
                return
            uris = self._stage(view, uris)
        # The declared schema, not inference: no footer-reading job, and files written before a column existed
        # read it as null (as DuckDB's union_by_name does).
        ddl = ", ".join(f"`{f.name}` {spark_type(f.type)}" for f in schema)
        df = self.spark.read.schema(ddl).parquet(*[self._hadoop_uri(u) for u in uris])
        self._input_bytes += _scan_bytes(df, uris)
        self._size_partitions()
        self._register_df(view, df, schema)

    def _size_partitions(self) -> None:
        """Scale local mode's shuffle partitions with the input read so far (see PARTITION_BYTES); a cluster keeps
        its own settings (Spark's default 200 and AQE). Scans need no such help: they stream, and one small file per
        listener already splits them into ~12 MB tasks."""
        pinned = self.ws.settings.spark_shuffle_partitions
        if "spark.sql.shuffle.partitions" in self.conf or not (self.master.startswith("local") or pinned):
            return
        self.spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions(self._input_bytes, pinned)))

    def _stage(self, view: str, uris: list[str]) -> list[str]:
        """Local Spark without hadoop-azure: copy the files to local disk (adlfs streams them) for Spark to read
        like any others. Reading them into an Arrow table on the driver instead holds the whole curated zone in
        Python and again in the JVM's heap: gigabytes at 10M plays."""

        lake = self.ws.lake
        root = lake.uri("")
        rels = [u[len(root):].lstrip("/") if u.startswith(root) else u.split("://", 1)[-1] for u in uris]
        local = [str(self._staging / view / rel) for rel in rels]
        for path in local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        lake.fs.get([lake.path(r) if u.startswith(root) else u for r, u in zip(rels, uris, strict=True)], local)
        return local

    def register_arrow(self, view: str, table: pa.Table, *, serve: bool = True) -> None:
        if serve:
            self._served.register_arrow(view, table)
        schema = table.schema
        # Spark's Arrow conversion wants plain timestamps; the casts below restore the declared types.
        df = self.spark.createDataFrame(table) if table.num_rows else self.spark.createDataFrame(
            [], ", ".join(f"`{f.name}` {spark_type(f.type)}" for f in schema))
        self._register_df(view, df, schema)

    def _register_df(self, view: str, df: Any, schema: pa.Schema) -> None:
        present = set(df.columns)
        cols = [f"CAST(`{f.name}` AS {spark_type(f.type)}) AS `{f.name}`" if f.name in present
                else f"CAST(NULL AS {spark_type(f.type)}) AS `{f.name}`" for f in schema]
        df.createOrReplaceTempView(f"_src_{view}")
        self.spark.sql(f"SELECT {', '.join(cols)} FROM _src_{view}").createOrReplaceTempView(view)
        self._views += [f"_src_{view}", view]

    def _reads_azure(self) -> bool:
        """Whether this Spark has hadoop-azure (a Synapse or Databricks cluster does; pip's pyspark does not)."""
        if self._native_azure is None:
            try:
                jvm = self.spark.sparkContext._jvm
                jvm.java.lang.Class.forName("org.apache.hadoop.fs.azurebfs.SecureAzureBlobFileSystem")
                self._native_azure = True
            except Exception:
                self._native_azure = False
        return self._native_azure

    def _hadoop_uri(self, uri: str) -> str:
        return hadoop_uri(uri, self.ws.lake_url)

    def _read_through_fsspec(self, uris: list[str], schema: pa.Schema) -> pa.Table:
        """A cluster without hadoop-azure: the driver reads the lake through adlfs and ships it (fine for what fits
        the driver; a cluster with hadoop-azure reads abfss:// natively, local mode stages files on disk)."""

        lake = self.ws.lake
        root = lake.uri("")
        rels = [u[len(root):].lstrip("/") if u.startswith(root) else u for u in uris]
        table = lake.read_parquet(rels)
        cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
                else pa.nulls(table.num_rows, f.type) for f in schema]
        return pa.table(cols, schema=schema)

    # --- models -----------------------------------------------------------------------------------------------
    def _output_root(self) -> str:
        """Where Spark writes the tables: a folder the executors and this machine (which loads them into DuckDB)
        both reach. Local mode: the warehouse folder. A cluster: the lake (`_spark/<stamp>/`), or
        the spark_output setting."""
        override = self.ws.settings.spark_output.rstrip("/")
        if override:
            return f"{override}/{self.stamp}"
        if self.master.startswith("local"):
            return str(self.out_dir)

        lake = self.ws.lake
        if lake.is_local:
            return lake.path(f"_spark/{self.stamp}")
        if lake.scheme in _AZURE_SCHEMES and self._reads_azure():
            return hadoop_uri(lake.uri(f"_spark/{self.stamp}"), self.ws.lake_url)
        raise TunelakeError(
            f"Spark on {self.master} has no shared place to write the warehouse tables",
            hint="give the lake as abfss://container@account.dfs.core.windows.net/… on a cluster with hadoop-azure, "
                 "or set spark_output to a folder or URL every executor and this machine can reach",
        )

    def _remove_output(self, name: str) -> None:
        root = f"{self.output}/{name}"
        if "://" not in root:
            shutil.rmtree(root, ignore_errors=True)
            return
        from tunelake.lake.store import Lake

        with contextlib.suppress(Exception):  # a leftover costs disk, not correctness
            Lake(self.output).delete(name)

    def _output_files(self, name: str) -> list[str]:
        """The Parquet files Spark wrote for one table, as paths or URLs DuckDB can read."""
        root = f"{self.output}/{name}"
        if "://" not in root:
            return sorted(str(p) for p in Path(root).glob("*.parquet"))
        from tunelake.lake.store import Lake

        out = Lake(root)
        uris = [out.uri(r) for r in out.glob("*.parquet")]
        for uri in uris[:1]:
            self._served.use_filesystem(uri)
        return uris

    def materialize(self, name: str, select_sql: str, spec: Table | None = None, temp: bool = False) -> int:
        sql = cast_select(select_sql, spec, lambda c: c.sql_type("spark")) if spec else select_sql
        df = self.spark.sql(sql)
        # Every model is written and read back, so later models read data, not the lineage that produced it. The
        # `int_*` ones too, rather than persisted: Spark 4 does not find a cached view from a query that names it
        # inside a WITH (int_plays_local, dim_track, dim_date and fact_play do), so each of those re-ran its inputs'
        # whole lineage, and for dim_date planned a broadcast of every play, which at 1M plays ran a 512 MB driver
        # out of heap. Parquet on disk cannot fill the heap, and later models read only the columns they use. At
        # 1M plays the build took 65 s (512 MB or 2 GB driver) against 72–85 s persisted DISK_ONLY and 79 s
        # MEMORY_AND_DISK (2 GB; it fails with 512 MB).
        out = f"{self.output}/{INTERMEDIATE}/{name}" if temp else f"{self.output}/{name}"
        df.write.mode("overwrite").parquet(out)
        self.spark.read.parquet(out).createOrReplaceTempView(name)
        self._views.append(name)
        if temp:
            return int(self.spark.table(name).count())
        return self._serve(name, spec)

    def _serve(self, name: str, spec: Table | None) -> int:
        """Load one Spark-written table into the DuckDB serving file, with the spec's DuckDB types."""
        files = self._output_files(name)
        if files:
            source = "read_parquet([" + ", ".join(_quote(f) for f in files) + "])"
            if spec:
                cols = ", ".join(f"CAST({c.name} AS {c.sql_type('duckdb')}) AS {c.name}" for c in spec.columns)
                self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {spec.ordered(f'SELECT {cols} FROM {source}')}")
            else:
                self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {source}")
        elif spec:  # Spark writes no file for an empty result
            cols = ", ".join(f"{c.name} {c.sql_type('duckdb')}" for c in spec.columns)
            self.con.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
        else:
            raise TunelakeError(f"Spark wrote no data for {name} and it has no spec to create it empty")
        return int(self.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])

    # --- queries ----------------------------------------------------------------------------------------------
    @property
    def serving(self) -> duckdb.DuckDBPyConnection:
        return self._served.con

    def query(self, sql: str) -> pa.Table:
        """A query on the served warehouse (the DuckDB file the models were loaded into, plus the curated views)."""
        return self._served.query(sql)

    def execute(self, sql: str, params: Any = None) -> Any:
        """A statement on the DuckDB serving file (run log, quality results, analytics tables)."""
        return self._served.execute(sql, params)

    def spark_query(self, sql: str) -> pa.Table:
        """A query on Spark's side: the curated views, the `int_*` views and the Spark-written tables."""
        df = self.spark.sql(sql)
        if hasattr(df, "toArrow"):
            return _utc_naive(df.toArrow())
        return pa.Table.from_pandas(df.toPandas(), preserve_index=False)

    def close(self) -> None:
        for view in self._views:
            with contextlib.suppress(Exception):  # the session may already be gone
                self.spark.catalog.dropTempView(view)
        self._views = []
        shutil.rmtree(self._staging, ignore_errors=True)
        self._remove_output(INTERMEDIATE)
        with contextlib.suppress(duckdb.Error):
            self.con.execute("CHECKPOINT")
        self._served.close()
        if self.output == str(self.out_dir):
            _prune_outputs(self.path.parent, self.stamp)


def _scan_bytes(df: Any, uris: list[str]) -> int:
    """Bytes of Parquet a scan reads: Spark's estimate from the file listing it made anyway (any filesystem), else
    the local files' sizes."""
    with contextlib.suppress(Exception):
        return int(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())
    return sum(os.path.getsize(u) for u in uris if "://" not in u and os.path.exists(u))


def _utc_naive(table: pa.Table) -> pa.Table:
    """Spark hands session-zone (UTC) timestamps to Arrow as tz-aware; the warehouse's timestamps are naive UTC."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) and f.type.tz else f
              for f in table.schema]
    return table.cast(pa.schema(fields)) if fields != list(table.schema) else table


def _prune_outputs(warehouse_dir: Path, keep: str) -> None:
    """Spark's Parquet is needed while its build loads it; keep this build's and the current warehouse's only."""
    import json

    root = warehouse_dir / "spark"
    if not root.exists():
        return
    keep_names = {keep}
    pointer = warehouse_dir / "CURRENT.json"
    if pointer.exists():
        keep_names.add(json.loads(pointer.read_text()).get("file", "").removeprefix("wh-").removesuffix(".duckdb"))
    for out in root.iterdir():
        if out.is_dir() and out.name not in keep_names:
            shutil.rmtree(out, ignore_errors=True)
