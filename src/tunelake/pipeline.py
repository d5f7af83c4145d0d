"""`tunelake run`: every step in order, incremental and idempotent, each one recorded in the run log.

Steps: import (raw → curated, only when paths are given) → build (curated → a new warehouse file) → quality
(the gates, on the new file) → analytics (features, segments, recommendations, when `tunelake.analytics.steps`
exists; written into the new file) → switch CURRENT.json → report (when `tunelake.report.build` exists).

Where the run log lives: one JSON document per run in the lake, `_manifest/runs/<run_id>.json`, rewritten after
every step (a single atomic put, so a killed run leaves the steps it finished). It is the source of truth: every
build reloads `meta_run` and `meta_quality` from it into the new warehouse file before the pointer switch, so the
warehouse also shows runs that failed or were skipped (they changed no warehouse, by design). A failed step never
switches the pointer: readers keep the previous warehouse, and `PipelineError` names the step and how to retry.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from tunelake.errors import InputError, PipelineError, QualityGateError, TunelakeError
from tunelake.lake import zones
from tunelake.lake.store import Lake
from tunelake.workspace import Workspace

STEPS = ("import", "build", "quality", "analytics", "report")
RUNS_DIR = f"{zones.MANIFEST}/runs"

Bar = Callable[[str], Any]  # label → context manager yielding update(done, total, label)

HINTS = {
    "import": "fix or remove the file named above and run `tunelake run` again with the same paths; "
              "files already imported are recognised and skipped",
    "build": "the previous warehouse is still current; fix the cause and run `tunelake run` again "
             "(imported data is kept, the build is redone)",
    "quality": "the previous warehouse is still current; fix or re-import the offending data, then run "
               "`tunelake run` again",
    "analytics": "the previous warehouse is still current; fix the cause and run `tunelake run` again",
    "report": "the new warehouse is current; run `tunelake run` again to retry the report",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id() -> str:
    """Sortable and unique: UTC timestamp plus a random suffix."""
    return f"{utcnow():%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


@dataclass
class StepRecord:
    run_id: str
    step: str
    started_at: str
    ended_at: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    status: str = "ok"  # ok | skipped | failed
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    status: str = "running"  # running | ok | failed
    steps: list[StepRecord] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)
    warehouse: str | None = None
    started_at: str = ""
    ended_at: str | None = None

    def step(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.step == name), None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the run log ----------------------------------------------------------------------------------------------


def run_log_path(run_id: str) -> str:
    return f"{RUNS_DIR}/{run_id}.json"


def save_run(lake: Lake, run: RunResult) -> None:
    lake.write_json(run_log_path(run.run_id), json.loads(json.dumps(run.as_dict(), default=str)))


def read_run_logs(lake: Lake, last: int | None = None) -> list[dict[str, Any]]:
    """Runs from the lake's run log, oldest first (the last `last` only, when given)."""
    names = sorted(n for n in lake.listdir(RUNS_DIR) if n.endswith(".json") and not n.startswith("."))
    if last is not None:
        names = names[-last:]
    out = []
    for name in names:
        try:
            out.append(lake.read_json(f"{RUNS_DIR}/{name}"))
        except (ValueError, FileNotFoundError):  # a torn document cannot exist (atomic puts); be lenient anyway
            continue
    return out


def _ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else value


def insert_meta_rows(con: Any, run: dict[str, Any]) -> None:
    """Replace one run's rows in meta_run and meta_quality (a DuckDB connection) with the run log's."""
    run_id = run["run_id"]
    con.execute("DELETE FROM meta_run WHERE run_id = ?", [run_id])
    rows = [(run_id, s["step"], _ts(s["started_at"]), _ts(s.get("ended_at")), s.get("rows_in"), s.get("rows_out"),
             s["status"], (s.get("error") or None) and str(s["error"])[:4000],
             json.dumps(s.get("details") or {}, default=str)[:4000]) for s in run.get("steps", [])]
    if rows:
        con.executemany("INSERT INTO meta_run VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if run.get("quality"):
        con.execute("DELETE FROM meta_quality WHERE run_id = ?", [run_id])
        checked = _ts(run.get("quality_checked_at")) or _ts(run.get("ended_at")) or _ts(run.get("started_at"))
        con.executemany("INSERT INTO meta_quality VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (run_id, q["check_name"], q["table_name"], q["status"], q["failing_rows"],
             json.dumps(q.get("sample_keys") or [], default=str)[:4000], checked) for q in run["quality"]])


class _Recorder:
    """Times steps, keeps their records in the RunResult and saves the run log after each one."""

    def __init__(self, lake: Lake, run: RunResult) -> None:
        self.lake, self.run = lake, run

    def start(self, step: str) -> StepRecord:
        rec = StepRecord(self.run.run_id, step, utcnow().isoformat())
        self.run.steps.append(rec)
        return rec

    def finish(self, rec: StepRecord, status: str = "ok", **kw: Any) -> StepRecord:
        rec.ended_at = utcnow().isoformat()
        rec.status = status
        for k, v in kw.items():
            setattr(rec, k, v)
        save_run(self.lake, self.run)
        return rec

    def skip(self, step: str, reason: str) -> StepRecord:
        return self.finish(self.start(step), "skipped", details={"reason": reason})

    def fail(self, rec: StepRecord, exc: BaseException) -> PipelineError:
        msg = exc.one_line() if isinstance(exc, TunelakeError) else f"{type(exc).__name__}: {exc}"
        details = dict(rec.details)
        if isinstance(exc, QualityGateError) and hasattr(exc, "failed"):
            details["failed_gates"] = [f"{r.check_name} on {r.table_name}" for r in exc.failed]
        self.finish(rec, "failed", error=msg, details=details)
        self.run.status, self.run.ended_at = "failed", utcnow().isoformat()
        save_run(self.lake, self.run)
        return PipelineError(f"run {self.run.run_id}: step '{rec.step}' failed: {msg}", hint=HINTS[rec.step])


def optional(module: str, name: str) -> Callable[..., Any] | None:
    """A later step's entry point, or None when its module is not there (yet)."""
    try:
        return getattr(import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise
    except AttributeError:
        return None


def _analytics_steps(rec_factory: _Recorder, ws: Workspace, con: Any, run_id: str) -> dict[str, Any]:
    """Run the analytics engineer's steps on `con`; one meta_run row per sub-step it reports."""
    run_analytics = optional("tunelake.analytics.steps", "run_analytics")
    if run_analytics is None:
        rec_factory.skip("analytics", "tunelake.analytics.steps is not installed")
        return {}
    rec = rec_factory.start("analytics")
    t0 = time.perf_counter()
    try:
        out = run_analytics(ws, con, run_id) or {}
    except InputError as exc:
        # Not enough data to learn from (one listener, a few days) is no reason to withhold a good warehouse.
        rec_factory.finish(rec, "skipped", details={"reason": exc.one_line(), "seconds":
                                                    round(time.perf_counter() - t0, 3)})
        return {}
    except BaseException as exc:
        raise rec_factory.fail(rec, exc) from exc
    subs = {k: v for k, v in out.items() if k in ("features", "segments", "recommendations") and isinstance(v, dict)}
    rows = [v.get("rows") for v in subs.values() if isinstance(v.get("rows"), int)]
    rec_factory.finish(rec, "ok", rows_out=sum(rows) if rows else None,
                       details={"seconds": round(time.perf_counter() - t0, 3),
                                **json.loads(json.dumps(out, default=str))})
    return out


def _short(value: Any) -> str:
    if isinstance(value, dict):
        if "summary" in value:
            return str(value["summary"])
        return ", ".join(f"{k} {v}" for k, v in value.items() if isinstance(v, int | float | str))[:200]
    return str(value)[:200]


def _bar_factory(bar: Bar | None) -> Bar:
    return bar or (lambda label: nullcontext(lambda *a, **k: None))


def run_pipeline(
    ws: Workspace,
    *,
    paths: list[str] | None = None,
    user: str | None = None,
    timezone: str | None = None,
    force: bool = False,
    report: bool = True,
    bar: Bar | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Run every step in order; steps with nothing new to do are recorded as skipped.

    Raises PipelineError (naming the step and how to retry) when a step fails; the previous warehouse stays
    current unless the failing step came after the switch (report).
    """
    if paths and not user:  # a usage error, not a failed step: nothing is started or logged
        raise InputError("--user is required with paths to import", field="--user",
                         hint="say whose export it is: tunelake run PATH --user NAME")
    with ws.writing(command="run"):
        return _run_pipeline(ws, paths=paths, user=user, timezone=timezone, force=force, report=report, bar=bar,
                             run_id=run_id)


def mark_interrupted(lake: Lake) -> list[str]:
    """Runs the log still shows as running, seen by a holder of the workspace lock, were stopped (killed, power
    cut): say so in their log. Returns their ids."""
    stopped = []
    for run in read_run_logs(lake, last=20):
        if run.get("status") != "running":
            continue
        run["status"], run["ended_at"] = "interrupted", run.get("ended_at") or utcnow().isoformat()
        for s in run.get("steps", []):
            if s.get("ended_at") is None:
                s["status"], s["ended_at"] = "interrupted", run["ended_at"]
                s["error"] = "the process stopped before the step ended (killed or crashed)"
        lake.write_json(run_log_path(run["run_id"]), run)
        stopped.append(run["run_id"])
    return stopped


def _run_pipeline(
    ws: Workspace,
    *,
    paths: list[str] | None,
    user: str | None,
    timezone: str | None,
    force: bool,
    report: bool,
    bar: Bar | None,
    run_id: str | None,
) -> RunResult:
    from tunelake.warehouse import quality
    from tunelake.warehouse.build import MODEL_ORDER, build
    from tunelake.warehouse.store import read_pointer
    from tunelake.warehouse.tables import warehouse_tables

    bar = _bar_factory(bar)
    lake = ws.lake
    mark_interrupted(lake)
    run = RunResult(run_id or new_run_id(), started_at=utcnow().isoformat())
    rec = _Recorder(lake, run)

    # 1. import: raw → curated
    if paths:
        step = rec.start("import")
        try:
            from tunelake.ingest import import_paths

            with bar(f"Importing {user}") as update:
                summary = import_paths(ws, list(paths), user, timezone=timezone, progress=update)
        except BaseException as exc:
            raise rec.fail(step, exc) from exc
        totals = summary.as_dict()
        new_files = sum(1 for f in summary.files if f.status == "imported")
        if summary.files and all(f.status == "failed" for f in summary.files):
            raise rec.fail(step, InputError("; ".join(summary.errors)[:2000]))
        rec.finish(step, "ok" if new_files else "skipped", rows_in=totals["read"], rows_out=totals["accepted"],
                   details={**totals, "new_files": new_files})
    else:
        rec.skip("import", "no paths given")

    # 2–4. build → quality → analytics, all on the new warehouse file before the switch
    build_rec = rec.start("build")
    state: dict[str, Any] = {"current": build_rec}

    def after_models(engine: Any) -> None:
        build_rec.ended_at = utcnow().isoformat()  # models built; what follows is recorded as its own steps
        build_rec.details["models_seconds"] = round(time.perf_counter() - t_build, 3)
        build_rec.rows_in = int(engine.query("SELECT count(*) AS n FROM cur_plays").column(0)[0].as_py())
        build_rec.rows_out = sum(int(engine.query(f"SELECT count(*) AS n FROM {t.name}").column(0)[0].as_py())
                                 for t in warehouse_tables())
        q_rec = rec.start("quality")
        state["current"] = q_rec
        update = state["update"]  # one live bar at a time: the build's bar reports these steps too
        update(len(MODEL_ORDER), len(MODEL_ORDER), "quality gates")
        results = quality.run_gates(engine, lake)
        run.quality = quality.as_dicts(results)
        checked = utcnow()
        if hasattr(engine, "con"):
            quality.store_results(engine, run.run_id, results, checked)
        quality.raise_for_failures(results)
        rec.finish(q_rec, "ok", rows_in=len(results), rows_out=sum(r.passed for r in results),
                   details={"summary": quality.summary_line(results),
                            "reconciliation": {f"{r.check_name}:{r.table_name}": r.details
                                               for r in results if r.check_name.startswith("reconcile")}})
        if hasattr(engine, "con"):
            state["current"] = None
            update(len(MODEL_ORDER), len(MODEL_ORDER), "analytics: features, segments, recommendations")
            state["analytics"] = _analytics_steps(rec, ws, engine.con, run.run_id)
        else:
            rec.skip("analytics", f"the {engine.name} engine writes no analytics tables here")
        # This run's rows so far go into the new file, so the warehouse that becomes current lists them.
        if hasattr(engine, "con"):
            snapshot = json.loads(json.dumps(run.as_dict(), default=str))
            snapshot["quality_checked_at"] = checked.isoformat()
            insert_meta_rows(engine.con, snapshot)

    t_build = time.perf_counter()
    try:
        with bar("Building warehouse") as update:
            state["update"] = update
            info = build(ws, force=force, run_id=run.run_id, progress=update, after_models=after_models,
                         gates=False)
    except BaseException as exc:
        if build_rec.ended_at is not None:  # the models were built; a later step discarded the new file
            rec.finish(build_rec, "ok", ended_at=build_rec.ended_at, details={**build_rec.details, "discarded": True})
        if isinstance(exc, PipelineError):  # a step inside the build already recorded its failure
            raise
        raise rec.fail(state["current"] or build_rec, exc) from exc
    if info.skipped:
        rec.finish(build_rec, "skipped", details={"reason": "nothing new since the last build",
                                                  "warehouse": info.file, "fingerprint": info.fingerprint})
        rec.skip("quality", "the warehouse did not change")
        rec.skip("analytics", "the warehouse did not change")
    else:
        rec.finish(build_rec, "ok", rows_in=info.rows_in, rows_out=info.rows_out, ended_at=build_rec.ended_at,
                   details={**build_rec.details, "warehouse": info.file, "seconds": round(info.seconds, 3),
                            "rows": {k: v for k, v in info.rows.items() if not k.startswith("int_")}})
    pointer = read_pointer(ws) or {}
    run.warehouse = pointer.get("file")

    # 5. report: after the switch, because it reads the current warehouse
    write_report = optional("tunelake.report.build", "write_report") if report else None
    if write_report is None:
        rec.skip("report", "disabled (--no-report)" if not report else "tunelake.report.build is not installed")
    elif info.skipped and not force and _last_report_warehouse(lake) == run.warehouse:
        rec.skip("report", "the report is up to date with the current warehouse")
    else:
        _report_step(rec, ws, bar, write_report, run.warehouse)

    run.status, run.ended_at = "ok", utcnow().isoformat()
    save_run(lake, run)
    return run


def report_path(ws: Workspace) -> Any:
    """Where the pipeline writes the report: the same default as `tunelake report`."""
    return ws.root / "report.html"


def _report_step(rec: _Recorder, ws: Workspace, bar: Bar, write_report: Callable[..., Any],
                 warehouse: str | None) -> Any:
    """The report step of `run` and of the demo. The step's log names the warehouse file the report describes, so
    a later run can tell that the report is already up to date (`_last_report_warehouse`)."""
    step = rec.start("report")
    try:
        with bar("Writing report") as update:
            update(0, 1, "report")
            path = write_report(ws, report_path(ws))
            update(1, 1, "done")
    except BaseException as exc:
        raise rec.fail(step, exc) from exc
    rec.finish(step, "ok", details={"path": str(path), "warehouse": warehouse})
    return path


def _last_report_warehouse(lake: Lake) -> str | None:
    for run in reversed(read_run_logs(lake, last=50)):
        for s in run.get("steps", []):
            if s["step"] == "report" and s["status"] == "ok":
                return (s.get("details") or {}).get("warehouse")
    return None


# --- the demo's later steps -----------------------------------------------------------------------------------


def post_build_steps(ws: Workspace, result: Any, serve: bool = False, say: Callable[[str], None] = lambda s: None,
                     bar: Bar | None = None, report: bool = True) -> dict[str, Any]:
    """After the demo's build: quality summary, analytics (into a copy of the warehouse, then switched),
    report, and the dashboard when `serve` (served without holding the workspace lock). Returns lines for the
    demo summary."""
    with ws.writing(command="demo: analytics and report"):
        lines = _post_build(ws, bar, report)
    serve_fn = optional("tunelake.dashboard.app", "serve") if serve else None
    if serve_fn is not None:
        host, port = ws.settings.dashboard_host, ws.settings.dashboard_port
        for k, v in lines.items():
            say(f"{k}: {v}")
        serve_fn(ws, host, port, say=say)
    return lines


def _post_build(ws: Workspace, bar: Bar | None, report: bool) -> dict[str, Any]:
    from tunelake.warehouse import quality
    from tunelake.warehouse.store import open_warehouse, read_pointer, warehouse_writer

    bar = _bar_factory(bar)
    lake = ws.lake
    mark_interrupted(lake)
    run = RunResult(new_run_id(), started_at=utcnow().isoformat())
    rec = _Recorder(lake, run)
    lines: dict[str, Any] = {}

    # The build ran the gates on the file that is now current; read their results (or run them now).
    step = rec.start("quality")
    con = open_warehouse(ws)
    try:
        rows = con.execute(
            "SELECT check_name, table_name, status, failing_rows, sample_keys FROM meta_quality "
            "WHERE run_id = (SELECT run_id FROM meta_quality ORDER BY checked_at DESC, run_id DESC LIMIT 1)"
        ).fetchall()
    finally:
        con.close()
    if rows:  # already stored under the build's run id: report them, do not store them twice
        results = [quality.GateResult(r[0], r[1], r[2], r[3], json.loads(r[4] or "[]")) for r in rows]
    else:
        results = quality.check_current(ws)
        run.quality = quality.as_dicts(results)
    lines["quality"] = quality.summary_line(results)
    status = "ok" if all(r.passed for r in results) else "failed"
    rec.finish(step, status, rows_in=len(results), rows_out=sum(r.passed for r in results),
               details={"summary": lines["quality"]})

    if optional("tunelake.analytics.steps", "run_analytics") is not None:
        with bar("Analytics") as update, warehouse_writer(ws, "analytics") as wcon:
            update(0, 1, "features, segments, recommendations")
            out = _analytics_steps(rec, ws, wcon, run.run_id)
            insert_meta_rows(wcon, json.loads(json.dumps(run.as_dict(), default=str)))
            update(1, 1, "done")
        for key in ("segments", "recommendations"):
            if out.get(key):
                lines[key] = _short(out[key])
    else:
        rec.skip("analytics", "tunelake.analytics.steps is not installed")

    write_report = optional("tunelake.report.build", "write_report") if report else None
    if write_report is not None:
        path = _report_step(rec, ws, bar, write_report, (read_pointer(ws) or {}).get("file"))
        lines["report"] = str(path)
    else:
        rec.skip("report", "disabled" if not report else "tunelake.report.build is not installed")

    run.warehouse = (read_pointer(ws) or {}).get("file")
    run.status, run.ended_at = "ok", utcnow().isoformat()
    save_run(lake, run)
    lines["run"] = run.run_id
    return lines
