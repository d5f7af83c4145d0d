"""Curated zone → star schema: the SQL models, rendered for an engine and run in dependency order.

This module builds tables into whatever engine (and warehouse file) it is given and nothing else: which file,
whether the build is needed, the quality gates and the switch that makes the file current are steps of the
pipeline (`tunelake.pipeline.steps`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pyarrow as pa
import pytz

from tunelake.lake import manifest, zones
from tunelake.lake.store import Lake
from tunelake.sources.types import CURATED
from tunelake.warehouse import rollups
from tunelake.warehouse.engines import Engine
from tunelake.warehouse.model_graph import MODEL_ORDER, render_model
from tunelake.warehouse.tables import TABLES
from tunelake.workspace import Workspace

# Settings the models depend on: changing one of them makes the next build run even with no new data.
MODEL_SETTINGS = ("stream_threshold_ms", "session_gap_minutes", "default_timezone", "engine")


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


def input_fingerprint(lake: Lake, ws: Workspace) -> str:
    settings = tuple((k, ws.settings.as_dict()[k]) for k in MODEL_SETTINGS)
    return hashlib.sha256(f"{manifest.fingerprint(lake)}|{settings}".encode()).hexdigest()[:24]


def build_models(ws: Workspace, engine: Engine, progress: Callable[[int, int, str], None] | None = None
                 ) -> tuple[int, dict[str, int]]:
    """Register the curated views, run every model on `engine` and write the serving file's rollups → (curated
    plays read, rows per model)."""
    rows_in = register_curated(engine, ws.lake)
    rows: dict[str, int] = {}
    total = len(MODEL_ORDER)
    for i, name in enumerate(MODEL_ORDER):
        if progress:
            progress(i, total, name)
        sql = render_model(name, engine.macros, ws.settings)
        rows[name] = engine.materialize(name, sql, TABLES.get(name), temp=name.startswith("int_"))
    if progress:
        progress(total, total, "rollups")
    rollups.refresh(engine.serving)
    if progress:
        progress(total, total, "done")
    return rows_in, rows
