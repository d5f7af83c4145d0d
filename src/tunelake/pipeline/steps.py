"""The pipeline's steps. Each is a function of the run context that returns its `StepInfo` (or raises; the
runner records the failure). Build, quality and analytics work on a new warehouse file that only `commit` makes
current, so readers always see a warehouse that passed every gate and carries its analytics tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunelake.errors import InputError
from tunelake.pipeline import runlog
from tunelake.pipeline.info import RunInfo, StepInfo, utcnow
from tunelake.warehouse.engines import Engine
from tunelake.workspace import Workspace

Bar = Callable[[str], Any]  # label → context manager yielding update(done, total, label)

HINTS = {
    "import": "fix or remove the file named above and run `tunelake run` again with the same paths; "
              "files already imported are recognised and skipped",
    "build": "the previous warehouse is still current; fix the cause and run `tunelake run` again "
             "(imported data is kept, the build is redone)",
    "quality": "the previous warehouse is still current; fix or re-import the offending data, then run "
               "`tunelake run` again",
    "analytics": "the previous warehouse is still current; fix the cause and run `tunelake run` again",
    "commit": "the previous warehouse is still current; run `tunelake run` again",
    "report": "the new warehouse is current; run `tunelake run` again to retry the report",
}


def no_bar(label: str) -> Any:
    return nullcontext(lambda *a, **k: None)


@dataclass
class RunContext:
    """What a run is asked to do, and what its steps hand each other (the new warehouse file and its engine)."""

    ws: Workspace
    run: RunInfo
    bar: Bar = no_bar
    paths: list[str] = field(default_factory=list)  # one listener's files (with `user`)
    user: str | None = None
    timezone: str | None = None
    jobs: list[tuple[str, list[str]]] = field(default_factory=list)  # many listeners at once
    catalog: Path | None = None
    force: bool = False
    report: bool = True
    # state the steps pass on
    step_name: str = ""
    step_started: str = ""
    engine: Engine | None = None
    new_file: Path | None = None
    previous: Path | None = None
    fingerprint: str = ""
    checked_at: datetime | None = None
    analytics: dict[str, Any] = field(default_factory=dict)
    rebuilt_users: set[int] | None = None  # after an incremental build: the listeners it recomputed

    @property
    def built(self) -> bool:
        return self.engine is not None

    def info(self, status: str = "ok", **kw: Any) -> StepInfo:
        return StepInfo(self.run.run_id, self.step_name, self.step_started, utcnow().isoformat(), status=status,
                        **kw)

    def skipped(self, reason: str, **details: Any) -> StepInfo:
        return self.info("skipped", details={"reason": reason, **details})

    def discard(self) -> None:
        """Close the engine and delete the new file (a step after the build failed, or the run stopped)."""
        from tunelake.warehouse.store import remove_warehouse_file

        if self.engine is not None:
            self.engine.close()
            self.engine = None
        if self.new_file is not None:
            remove_warehouse_file(self.new_file)
            self.new_file = None


# --- import --------------------------------------------------------------------------------------------------


def import_step(ctx: RunContext) -> StepInfo:
    """Files → raw → curated (one listener's paths, many listeners' jobs, a catalogue)."""
    from tunelake.curate.catalog import import_catalog
    from tunelake.curate.ingest import import_paths
    from tunelake.curate.parallel import import_many

    if not (ctx.paths or ctx.jobs or ctx.catalog):
        return ctx.skipped("no paths given")
    summaries = []
    with ctx.bar(f"Importing {ctx.user}" if ctx.paths else "Importing listeners") as update:
        if ctx.paths:
            summaries.append(import_paths(ctx.ws, list(ctx.paths), ctx.user, timezone=ctx.timezone,
                                          progress=update))
        if ctx.jobs:
            summaries += import_many(ctx.ws, ctx.jobs, timezone=ctx.timezone, progress=update)
    catalog = import_catalog(ctx.ws, ctx.catalog) if ctx.catalog else None
    files = [f for s in summaries for f in s.files]
    if files and all(f.status == "failed" for f in files):
        raise InputError("; ".join(e for s in summaries for e in s.errors)[:2000])
    totals: dict[str, Any] = summaries[0].as_dict() if len(summaries) == 1 else _sum(summaries)
    new = sum(1 for f in files if f.status == "imported") + (0 if catalog is None or catalog.already_imported
                                                              else 1)
    if catalog is not None:
        totals["catalog"] = {"tracks": catalog.tracks, "already_imported": catalog.already_imported}
    return ctx.info("ok" if new else "skipped", rows_in=totals["read"], rows_out=totals["accepted"],
                    details={**totals, "new_files": new})


def _sum(summaries: list[Any]) -> dict[str, Any]:
    keys = ("read", "accepted", "duplicates", "merged", "excluded_from_streams", "already_imported")
    dicts = [s.as_dict() for s in summaries]
    return {"listeners": len(dicts), **{k: sum(d[k] for d in dicts) for k in keys},
            "quarantined": {r: sum(d["quarantined"].get(r, 0) for d in dicts)
                            for r in sorted({r for d in dicts for r in d["quarantined"]})}}


# --- build → quality → analytics → commit ------------------------------------------------------------------------


def build_step(ctx: RunContext) -> StepInfo:
    """Curated zone → star schema in a new warehouse file, unless nothing changed since the current one. On an
    engine that allows it, the new file starts from the file before the current one when no reader holds it, or
    else from a copy of the current one, and only the listeners whose data changed since the file it started
    from are recomputed (`warehouse.incremental`); `--force` rebuilds everything."""
    from tunelake.warehouse import incremental
    from tunelake.warehouse.build import MODEL_SETTINGS, build_models, input_fingerprint
    from tunelake.warehouse.engines import engine_class, make_engine
    from tunelake.warehouse.store import new_warehouse_file, read_pointer

    ws = ctx.ws
    ctx.fingerprint = input_fingerprint(ws.lake, ws)
    pointer = read_pointer(ws)
    if pointer and pointer.get("fingerprint") == ctx.fingerprint and not ctx.force:
        return ctx.skipped("nothing new since the last build", warehouse=pointer["file"],
                           fingerprint=ctx.fingerprint)
    ctx.previous = ws.warehouse_dir / pointer["file"] if pointer else None
    supported = engine_class(ws).incremental
    plan = incremental.plan(ws, ctx.previous, supported=supported, force=ctx.force)
    ctx.new_file = new_warehouse_file(ws, ctx.run.run_id)
    t0 = time.perf_counter()
    start = None
    if plan.incremental:
        assert ctx.previous is not None and pointer is not None
        older = ws.warehouse_dir / pointer["previous"] if pointer.get("previous") else None
        recycled = incremental.recycle(ws, older, ctx.new_file, plan.signatures)
        if recycled is not None:
            assert older is not None
            plan, start = recycled, f"{older.name} (the file before the current one, updated in place)"
        else:
            incremental.copy_warehouse(ctx.previous, ctx.new_file)
            start = f"a copy of {ctx.previous.name}"
    ctx.engine = make_engine(ws, ctx.new_file)
    rebuilt = None
    marks: list[tuple[str, float]] = []  # (model, when it started): where a build's time goes, in the run log
    with ctx.bar("Updating warehouse" if plan.incremental else "Building warehouse") as bar:
        def update(i: int, total: int, name: str) -> None:
            marks.append((name, time.perf_counter()))
            bar(i, total, name)

        if plan.incremental:
            rows_in, rows, rebuilt = incremental.build_incremental(ws, ctx.engine, plan.changed, progress=update)
        else:
            rows_in, rows = build_models(ws, ctx.engine, progress=update)
        if supported:
            incremental.save_state(ctx.engine, ws, plan.signatures, full=not plan.incremental)
    runlog.carry_meta(ctx.engine.serving, ctx.previous, ws.lake)  # the run log so far, for gates to add to
    _load_gaps(ctx.engine.serving, ws)
    out = {k: v for k, v in rows.items() if not k.startswith("int_")}
    mode = {"mode": "incremental" if plan.incremental else "full", "why": plan.reason}
    if rebuilt is not None:
        mode["listeners_rebuilt"] = len(rebuilt)
        mode["started_from"] = start
    ctx.rebuilt_users = rebuilt
    return ctx.info(rows_in=rows_in, rows_out=sum(out.values()),
                    details={"warehouse": ctx.new_file.name, "rows": out, "fingerprint": ctx.fingerprint,
                             "seconds": round(time.perf_counter() - t0, 3), "settings": list(MODEL_SETTINGS),
                             "model_seconds": _spans(marks), **mode})


def _spans(marks: list[tuple[str, float]]) -> dict[str, float]:
    """Seconds from each progress mark to the next, by name (a name marked twice adds up)."""
    out: dict[str, float] = {}
    for (name, t), (_, nxt) in zip(marks, marks[1:], strict=False):
        out[name] = round(out.get(name, 0.0) + nxt - t, 3)
    return out


def _load_gaps(con: Any, ws: Workspace) -> None:
    """meta_gap: the gaps recorded in the lake, with their status now (an export imported since closes one)."""
    from tunelake.curate.gaps import gaps_table
    from tunelake.warehouse.tables import TABLES

    spec = TABLES["meta_gap"]
    con.register("_gaps", gaps_table(ws.lake))
    cols = ", ".join(f"CAST({c.name} AS {c.sql_type('duckdb')}) AS {c.name}" for c in spec.columns)
    con.execute(f"CREATE OR REPLACE TABLE meta_gap AS SELECT {cols} FROM _gaps")
    con.unregister("_gaps")


def quality_step(ctx: RunContext) -> StepInfo:
    """The data-quality gates on the new file; results go into its meta_quality and the run log."""
    from tunelake.warehouse import quality

    if not ctx.built:
        return ctx.skipped("the warehouse did not change")
    assert ctx.engine is not None
    # After an incremental build only the rebuilt listeners' rows are new: the rest passed these gates before.
    results = quality.run_gates(ctx.engine, ctx.ws.lake, users=ctx.rebuilt_users)
    ctx.run.quality = quality.as_dicts(results)
    ctx.checked_at = utcnow()
    quality.store_results(ctx.engine.serving, ctx.run.run_id, results, ctx.checked_at)
    quality.raise_for_failures(results)
    return ctx.info(rows_in=len(results), rows_out=sum(r.passed for r in results),
                    details={"summary": quality.summary_line(results),
                             "scope": ("whole warehouse" if ctx.rebuilt_users is None else
                                       f"whole-warehouse tables, and the {len(ctx.rebuilt_users)} listeners "
                                       "this build recomputed"),
                             "reconciliation": {f"{r.check_name}:{r.table_name}": r.details
                                                for r in results if r.check_name.startswith("reconcile")}})


def _previous_evaluation(ctx: RunContext) -> Any:
    """After an incremental build, the recommender evaluation of the file it started from (the build leaves the
    analytics tables to this step); None after a full build, which always evaluates."""
    if ctx.rebuilt_users is None or ctx.previous is None or ctx.engine is None:
        return None
    con = ctx.engine.serving
    con.execute("ATTACH ? AS _previous (READ_ONLY)", [str(ctx.previous)])
    try:
        found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = '_previous' "
                            "AND schema_name = 'main' AND table_name = 'rec_evaluation'").fetchone()[0]
        return con.execute("SELECT * FROM _previous.main.rec_evaluation").df() if found else None
    finally:
        con.execute("DETACH _previous")


def analytics_step(ctx: RunContext) -> StepInfo:
    """Features → segments → recommendations, into the new file."""
    from tunelake.analytics.steps import run_analytics

    if not ctx.built:
        return ctx.skipped("the warehouse did not change")
    assert ctx.engine is not None
    t0 = time.perf_counter()
    try:
        with ctx.bar("Analytics") as update:
            out = run_analytics(ctx.ws, ctx.engine.serving, ctx.run.run_id, progress=update,
                                previous_evaluation=_previous_evaluation(ctx)) or {}
    except InputError as exc:
        # Not enough data to learn from (one listener, a few days) is no reason to withhold a good warehouse.
        return ctx.skipped(exc.one_line(), seconds=round(time.perf_counter() - t0, 3))
    ctx.analytics = out
    subs = {k: v for k, v in out.items() if k in ("features", "segments", "recommendations") and isinstance(v, dict)}
    rows = [v.get("rows") for v in subs.values() if isinstance(v.get("rows"), int)]
    return ctx.info(rows_out=sum(rows) if rows else None,
                    details={"seconds": round(time.perf_counter() - t0, 3), **json.loads(json.dumps(out, default=str))})


def commit_step(ctx: RunContext) -> StepInfo:
    """Make the new file current: this run's log so far goes into it (earlier runs went in with the build), then
    the pointer switches atomically and files no reader needs are pruned."""
    from tunelake.warehouse.store import prune_warehouse_files, write_pointer

    if not ctx.built:
        return ctx.skipped("the warehouse did not change")
    assert ctx.engine is not None and ctx.new_file is not None
    con = ctx.engine.serving
    snapshot = json.loads(json.dumps(ctx.run.as_dict(), default=str))
    if ctx.checked_at is not None:
        snapshot["quality_checked_at"] = ctx.checked_at.isoformat()
    runlog.insert_meta_rows(con, snapshot)  # the warehouse that becomes current lists this run's steps so far
    build = ctx.run.step("build")
    rows = dict(build.details.get("rows", {})) if build else {}
    ctx.engine.close()
    ctx.engine = None
    name = ctx.new_file.name
    write_pointer(ctx.ws, {"file": name, "fingerprint": ctx.fingerprint, "built_at": datetime.now(UTC).isoformat(),
                           "engine": ctx.ws.settings.engine, "rows": rows,
                           "previous": ctx.previous.name if ctx.previous else None})
    ctx.new_file = None
    pruned = prune_warehouse_files(ctx.ws)
    ctx.run.warehouse = name
    return ctx.info(details={"warehouse": name, "pruned": len(pruned)})


# --- report --------------------------------------------------------------------------------------------------


def report_path(ws: Workspace) -> Path:
    """Where the pipeline writes the report: the same default as `tunelake report`."""
    return ws.root / "report.html"


def report_step(ctx: RunContext) -> StepInfo:
    """The HTML report from the current warehouse (after the switch, because it reads that one)."""
    from tunelake.report.build import write_report
    from tunelake.warehouse.store import read_pointer

    current = (read_pointer(ctx.ws) or {}).get("file")
    if not ctx.report:
        return ctx.skipped("disabled (--no-report)")
    if current is None:
        return ctx.skipped("no warehouse yet")
    if not ctx.force and _last_report_warehouse(ctx.ws) == current:
        return ctx.skipped("the report is up to date with the current warehouse")
    with ctx.bar("Writing report") as update:
        update(0, 1, "report")
        path = write_report(ctx.ws, report_path(ctx.ws))
        update(1, 1, "done")
    return ctx.info(details={"path": str(path), "warehouse": current})


def _last_report_warehouse(ws: Workspace) -> str | None:
    for run in reversed(runlog.read_run_logs(ws.lake, last=50)):
        for s in run.get("steps", []):
            if s["step"] == "report" and s["status"] == "ok":
                return (s.get("details") or {}).get("warehouse")
    return None
