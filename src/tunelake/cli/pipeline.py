"""`tunelake run`, `tunelake build`, `tunelake status`, `tunelake doctor`: the pipeline and what the workspace
holds."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from tunelake.cli.common import console, emit, progress_bar, workspace


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command()(build)
    app.command("status")(status_cmd)
    app.command("doctor")(doctor_cmd)


def run_cmd(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(None, help="Export files, folders or zips to import first (optional)"),
    user: str = typer.Option(None, "--user", "-u", help="Handle of the listener the paths belong to"),
    tz: str = typer.Option(None, "--tz", help="IANA timezone of that listener"),
    force: bool = typer.Option(False, "--force",
                               help="Rebuild every table from the curated zone (not incrementally) and re-run later "
                                    "steps, even if nothing changed"),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML report after the build"),
) -> None:
    """Run the pipeline: import (if paths) → build → quality gates → analytics → report. Idempotent."""
    from tunelake.pipeline import run

    ws = workspace(ctx)
    result = run(ws, paths=[str(p) for p in paths or []], user=user, timezone=tz, force=force, report=report,
                 bar=progress_bar)
    emit([{"step": s.step, "status": s.status, "rows in": s.rows_in, "rows out": s.rows_out,
           "seconds": _seconds(s.started_at, s.ended_at),
           "note": _note(s.details)}
          for s in result.steps], "table", title=f"Run {result.run_id}")
    console.print(f"Warehouse: {result.warehouse or '(none)'}")

def status_cmd(
    ctx: typer.Context,
    runs: int = typer.Option(5, "--runs", help="How many recent runs to show"),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """Show the lake (batches, sources, users, date ranges), the warehouse (tables, rows, freshness) and the
    last runs."""
    from tunelake.curate.listener_state import listeners_status
    from tunelake.pipeline import read_run_logs
    from tunelake.pipeline.status import lake_status, warehouse_status

    ws = workspace(ctx)
    lake = lake_status(ws)
    wh = warehouse_status(ws)
    listeners = listeners_status(ws)
    logged = read_run_logs(ws.lake, last=runs)
    run_rows = [{"run": r["run_id"], "step": s["step"], "status": s["status"], "rows in": s.get("rows_in"),
                 "rows out": s.get("rows_out"), "seconds": _seconds(s["started_at"], s.get("ended_at")),
                 "error": (s.get("error") or "")[:120]} for r in reversed(logged) for s in r.get("steps", [])]
    if fmt == "json":
        emit([{"lake": lake, "warehouse": wh, "listeners": listeners, "runs": list(reversed(logged))}], "json")
        return
    console.print(f"[bold]Lake[/] {ws.lake_url}: {lake['users']} users")
    if lake["sources"]:
        emit(lake["sources"], "table", title="Batches by source")
    if wh is None:
        console.print("[bold]Warehouse[/]: none yet (run `tunelake run`)")
    else:
        q = wh["quality"]
        console.print(f"[bold]Warehouse[/] {wh['file']} built {wh['built_at']} ({wh['age_minutes']} min ago)"
                      + (f", updated by {wh['updated_by']}" if wh.get("updated_by") else "")
                      + (f"; quality: {q['passed']}/{q['gates']} gates passed" if q else ""))
        emit(wh["tables"], "table", title="Tables")
    if listeners:
        emit([{"listener": s["handle"], "last poll": (s["last_poll_at"] or "")[:19],
               "next poll": (s["next_poll_at"] or "")[:19], "plays collected": s["plays_collected"],
               "open gaps": len(s["open_gaps"]), "token": s["token"]["state"]} for s in listeners],
             "table", title="Connected listeners (tunelake collect)")
        for s in listeners:
            for g in s["open_gaps"]:
                console.print(f"[yellow]gap[/] {s['handle']}: plays from {g['start'] or 'the beginning'} to "
                              f"{g['end']} may be missing — {g['fix']}", soft_wrap=True)
            if s["token"]["state"] not in ("ok",):
                console.print(f"[yellow]token[/] {s['handle']}: {s['token'].get('message')}", soft_wrap=True)
    if run_rows:
        emit(run_rows, "table", title=f"Last {len(logged)} runs")
    else:
        console.print("No runs yet (`tunelake run`).")

def doctor_cmd(
    ctx: typer.Context,
    check: bool = typer.Option(False, "--check", help="Only report; change nothing"),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """Check the workspace and repair what can be repaired: unfinished commits, leftovers of stopped writers,
    runs left running, warehouse files, curated rows against the manifest, the name index, file modes."""
    from tunelake.pipeline.doctor import diagnose

    findings = diagnose(workspace(ctx), repair=not check)
    emit([f.as_dict() for f in findings], "json" if fmt == "json" else "table", title="tunelake doctor")
    if any(f.status == "problem" for f in findings):
        raise typer.Exit(1)


def _note(details: dict[str, Any]) -> str:
    for key in ("summary", "reason", "path"):
        if details.get(key):
            return str(details[key])
    seg = details.get("segments")
    return str(seg.get("summary", "")) if isinstance(seg, dict) else ""


def _seconds(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.1f}"


def build(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force",
                               help="Rebuild every table from the curated zone (not incrementally), even when "
                                    "nothing changed"),
) -> None:
    """Build the star schema from the curated zone: nothing when nothing changed; on DuckDB, only the listeners
    whose data changed are recomputed."""
    from tunelake.pipeline import build as build_warehouse

    ws = workspace(ctx)
    with progress_bar("Building warehouse") as update:
        info = build_warehouse(ws, force=force, progress=update)
    if info.skipped:
        console.print("Warehouse is up to date: nothing new since the last build.")
        return
    console.print(f"Built {info.file} in {info.seconds:.1f}s from {info.rows_in:,} curated plays")
    emit([{"table": k, "rows": v} for k, v in info.rows.items() if not k.startswith("int_")], "table")
