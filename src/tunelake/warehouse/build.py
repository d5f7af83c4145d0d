"""`tunelake build`: curated zone → star schema, by running the SQL models in order on an engine.

A build writes a brand-new warehouse file and then switches the CURRENT pointer atomically, so readers keep
querying the previous warehouse while it runs and never see a half-built table. A build whose inputs (the
manifest's batches, the users' settings and the model settings) are unchanged since the last one does nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytz

from tunelake.config import Config
from tunelake.curate.schemas import CURATED
from tunelake.lake import manifest, zones
from tunelake.lake.lock import writing
from tunelake.lake.store import Lake
from tunelake.warehouse.engine import (
    Engine,
    make_engine,
    prune_warehouse_files,
    read_pointer,
    remove_warehouse_file,
    write_pointer,
)
from tunelake.warehouse.model_graph import MODEL_ORDER, render_model
from tunelake.warehouse.tables import TABLES

# Settings the models depend on: changing one of them makes the next build run even with no new data.
MODEL_SETTINGS = ("stream_threshold_ms", "session_gap_minutes", "default_timezone", "engine")


@dataclass
class BuildInfo:
    skipped: bool
    file: str = ""
    fingerprint: str = ""
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    rows_in: int = 0
    run_id: str = ""
    quality: list[Any] = field(default_factory=list)  # quality.GateResult of this build's gates

    @property
    def rows_out(self) -> int:
        return sum(v for k, v in self.rows.items() if not k.startswith("int_"))


def country_timezones() -> pa.Table:
    """Country → the first (most populous) IANA zone pytz lists for it: the guess for a user's timezone."""
    items = sorted((cc, zones_[0]) for cc, zones_ in pytz.country_timezones.items() if zones_)
    return pa.table({"country": [c for c, _ in items], "timezone": [z for _, z in items]})


def curated_uris(lake: Lake, table: str) -> list[str]:
    rels = lake.glob(f"{zones.curated_table_dir(table)}/**/*.parquet") + lake.glob(
        f"{zones.curated_table_dir(table)}/*.parquet")
    return [lake.read_uri(r) for r in sorted(set(rels)) if "/." not in r]


def register_curated(engine: Engine, lake: Lake) -> int:
    """Views cur_<table> over the curated zone (empty when a table has no data yet). Returns curated play rows.

    `cur_users` comes from the manifest's user entries, which are the truth the curated users table mirrors: a
    writer stopped between a commit and that mirror's rewrite must not cost a listener their dim_user row."""
    for table, schema in CURATED.items():
        if table == "users":
            users = sorted(manifest.list_users(lake), key=lambda u: u["handle"])
            engine.register_arrow("cur_users", pa.table({
                "user_key": pa.array([u["user_key"] for u in users], pa.int64()),
                "handle": pa.array([u["handle"] for u in users], pa.string()),
                "timezone": pa.array([u.get("timezone") for u in users], pa.string())}, schema=schema))
            continue
        engine.register_parquet(f"cur_{table}", curated_uris(lake, table), schema)
    engine.register_arrow("ref_country_tz", country_timezones())
    return int(engine.query("SELECT count(*) AS n FROM cur_plays")["n"][0].as_py())


def input_fingerprint(lake: Lake, cfg: Config) -> str:
    settings = tuple((k, cfg.values[k]) for k in MODEL_SETTINGS)
    return hashlib.sha256(f"{manifest.fingerprint(lake)}|{settings}".encode()).hexdigest()[:24]


def carry_meta(engine: Engine, previous: Path | None, lake: Lake | None = None) -> None:
    """Run log and quality results live on across builds.

    The lake's run log (`_manifest/runs/<run_id>.json`, written by `tunelake run`) is the source of truth: every
    run is loaded from it, including runs that failed or were skipped and so never built a warehouse. Rows of runs
    the log does not know (plain `tunelake build`, steps that wrote through `warehouse_writer`) are copied from
    the previous warehouse file.
    """
    from tunelake.warehouse.tables import TABLES as specs

    for name in ("meta_run", "meta_quality"):
        cols = ", ".join(f"{c.name} {c.sql_type('duckdb')}" for c in specs[name].columns)
        engine.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
    logged: list[dict[str, Any]] = []
    if lake is not None:
        from tunelake.pipeline import read_run_logs

        logged = read_run_logs(lake)
    known = {r["run_id"] for r in logged}
    if previous is not None and previous.exists() and hasattr(engine, "con"):
        engine.execute(f"ATTACH '{previous}' AS prev (READ_ONLY)")
        try:
            for name in ("meta_run", "meta_quality"):
                exists = engine.execute(
                    "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'prev' AND table_name = ?", [name]
                ).fetchone()[0]
                if exists:
                    engine.execute(f"INSERT INTO {name} BY NAME SELECT * FROM prev.{name} "
                                   f"WHERE run_id NOT IN (SELECT unnest(?::VARCHAR[]))", [sorted(known)])
        finally:
            engine.execute("DETACH prev")
    if logged and hasattr(engine, "con"):
        from tunelake.pipeline import insert_meta_rows

        for run in logged:
            insert_meta_rows(engine.con, run)


def build(
    cfg: Config,
    *,
    force: bool = False,
    run_id: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    after_models: Callable[[Engine], Any] | None = None,
    gates: bool = True,
) -> BuildInfo:
    """Build the star schema into a new warehouse file and make it current (or do nothing if nothing changed).

    With `gates` the data-quality gates run on the new file before the switch (results in meta_quality); a failed
    gate raises QualityGateError and the new file is discarded. `after_models(engine)` runs after the gates, on
    the new file, before the switch: later steps (analytics, the run log) land in the same warehouse.

    Holds the workspace lock: a second build waits for the first (two at once would each prune the other's file).
    """
    with writing(cfg, command="build"):
        return _build(cfg, force=force, run_id=run_id, progress=progress, after_models=after_models, gates=gates)


def _build(
    cfg: Config,
    *,
    force: bool,
    run_id: str | None,
    progress: Callable[[int, int, str], None] | None,
    after_models: Callable[[Engine], Any] | None,
    gates: bool,
) -> BuildInfo:
    lake = Lake(cfg.lake)
    fp = input_fingerprint(lake, cfg)
    pointer = read_pointer(cfg)
    if pointer and pointer.get("fingerprint") == fp and not force:
        return BuildInfo(skipped=True, file=pointer["file"], fingerprint=fp)

    started = time.perf_counter()
    cfg.warehouse_dir.mkdir(parents=True, exist_ok=True)
    stamp = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    new_file = cfg.warehouse_dir / f"wh-{stamp}.duckdb"
    previous = cfg.warehouse_dir / pointer["file"] if pointer else None
    engine = make_engine(cfg, new_file)
    info = BuildInfo(skipped=False, file=new_file.name, fingerprint=fp, run_id=stamp)
    try:
        info.rows_in = register_curated(engine, lake)
        total = len(MODEL_ORDER)
        for i, name in enumerate(MODEL_ORDER):
            if progress:
                progress(i, total, name)
            sql = render_model(name, engine.macros, cfg)
            spec = TABLES.get(name)
            info.rows[name] = engine.materialize(name, sql, spec, temp=name.startswith("int_"))
        if progress:
            progress(total, total, "done")
        carry_meta(engine, previous, lake)
        if gates:
            from tunelake.warehouse import quality

            info.quality = quality.enforce(engine, lake, stamp)
        if after_models is not None:
            after_models(engine)
    except BaseException:
        engine.close()
        remove_warehouse_file(new_file)
        raise
    engine.close()
    write_pointer(cfg, {"file": new_file.name, "fingerprint": fp, "built_at": datetime.now(UTC).isoformat(),
                        "engine": cfg.engine, "rows": {k: v for k, v in info.rows.items() if not k.startswith("int_")},
                        "previous": previous.name if previous else None})
    prune_warehouse_files(cfg)
    info.seconds = time.perf_counter() - started
    return info
