"""`tunelake run` and `tunelake status`: the pipeline and what the workspace holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer


def lake_status(ws: Any) -> dict[str, Any]:
    """Batches by source, users, play date ranges and quarantined counts, from the manifest and curated zone."""
    from tunelake.lake import manifest
    from tunelake.warehouse.build import register_curated
    from tunelake.warehouse.engines.duckdb import DuckDBEngine

    lake = ws.lake
    batches = manifest.list_batches(lake)
    sources: dict[str, dict[str, Any]] = {}
    for b in batches:
        s = sources.setdefault(b.source, {"source": b.source, "batches": 0, "users": set(), "read": 0,
                                          "accepted": 0, "duplicates": 0, "merged": 0, "quarantined": 0,
                                          "last_import": ""})
        s["batches"] += 1
        s["users"].add(b.handle)
        for k in ("read", "accepted", "duplicates", "merged"):
            s[k] += getattr(b, k)
        s["quarantined"] += b.quarantined_total
        s["last_import"] = max(s["last_import"], b.imported_at[:19])
    engine = DuckDBEngine()
    try:
        register_curated(engine, lake)
        ranges = {r[0]: r[1:] for r in engine.execute(
            "SELECT source, min(ended_at), max(ended_at), count(*) FROM cur_plays GROUP BY source").fetchall()}
    finally:
        engine.close()
    rows = []
    for name, s in sorted(sources.items()):
        lo, hi, n = ranges.get(name, (None, None, None))
        rows.append({**s, "users": len(s["users"]), "curated_plays": n, "first_play": str(lo or "")[:10],
                     "last_play": str(hi or "")[:10]})
    return {"users": len(manifest.list_users(lake)), "sources": rows}


def warehouse_status(ws: Any) -> dict[str, Any] | None:
    from tunelake.warehouse.store import open_warehouse, read_pointer

    pointer = read_pointer(ws)
    if not pointer:
        return None
    con = open_warehouse(ws)
    try:
        tables = con.execute("SELECT table_name, estimated_size FROM duckdb_tables() ORDER BY table_name").fetchall()
        counts = [{"table": t, "rows": con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]} for t, _ in tables]
        gates = None
        if any(t == "meta_quality" for t, _ in tables):
            gates = con.execute(
                "SELECT run_id, count(*), count(*) FILTER (WHERE status = 'pass') FROM meta_quality "
                "WHERE run_id = (SELECT run_id FROM meta_quality ORDER BY checked_at DESC, run_id DESC LIMIT 1) "
                "GROUP BY run_id").fetchone()
    finally:
        con.close()
    age = None
    if pointer.get("built_at"):
        built = datetime.fromisoformat(pointer["built_at"])
        age = round((datetime.now(UTC) - (built if built.tzinfo else built.replace(tzinfo=UTC))).total_seconds() / 60,
                    1)
    return {"file": pointer["file"], "built_at": pointer.get("built_at"), "age_minutes": age,
            "engine": pointer.get("engine"), "updated_by": pointer.get("updated_by"),
            "fingerprint": pointer.get("fingerprint"),
            "quality": None if not gates else {"run_id": gates[0], "gates": gates[1], "passed": gates[2]},
            "tables": counts}


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        ctx: typer.Context,
        paths: list[Path] = typer.Argument(None, help="Export files, folders or zips to import first (optional)"),
        user: str = typer.Option(None, "--user", "-u", help="Handle of the listener the paths belong to"),
        tz: str = typer.Option(None, "--tz", help="IANA timezone of that listener"),
        force: bool = typer.Option(False, "--force", help="Rebuild (and re-run later steps) even if nothing changed"),
        report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML report after the build"),
    ) -> None:
        """Run the pipeline: import (if paths) → build → quality gates → analytics → report. Idempotent."""
        from tunelake.cli import console, emit, get_config, progress_bar
        from tunelake.pipeline import run_pipeline

        ws = get_config(ctx)
        result = run_pipeline(ws, paths=[str(p) for p in paths or []], user=user, timezone=tz, force=force,
                              report=report, bar=progress_bar)
        emit([{"step": s.step, "status": s.status, "rows in": s.rows_in, "rows out": s.rows_out,
               "seconds": _seconds(s.started_at, s.ended_at),
               "note": _note(s.details)}
              for s in result.steps], "table", title=f"Run {result.run_id}")
        console.print(f"Warehouse: {result.warehouse or '(none)'}")

    @app.command("status")
    def status_cmd(
        ctx: typer.Context,
        runs: int = typer.Option(5, "--runs", help="How many recent runs to show"),
        fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
    ) -> None:
        """Show the lake (batches, sources, users, date ranges), the warehouse (tables, rows, freshness) and the
        last runs."""
        from tunelake.cli import console, emit, get_config
        from tunelake.pipeline import read_run_logs

        ws = get_config(ctx)
        lake = lake_status(ws)
        wh = warehouse_status(ws)
        logged = read_run_logs(ws.lake, last=runs)
        run_rows = [{"run": r["run_id"], "step": s["step"], "status": s["status"], "rows in": s.get("rows_in"),
                     "rows out": s.get("rows_out"), "seconds": _seconds(s["started_at"], s.get("ended_at")),
                     "error": (s.get("error") or "")[:120]} for r in reversed(logged) for s in r.get("steps", [])]
        if fmt == "json":
            emit([{"lake": lake, "warehouse": wh, "runs": list(reversed(logged))}], "json")
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
        if run_rows:
            emit(run_rows, "table", title=f"Last {len(logged)} runs")
        else:
            console.print("No runs yet (`tunelake run`).")

    @app.command("doctor")
    def doctor_cmd(
        ctx: typer.Context,
        check: bool = typer.Option(False, "--check", help="Only report; change nothing"),
        fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
    ) -> None:
        """Check the workspace and repair what can be repaired: unfinished commits, leftovers of stopped writers,
        runs left running, warehouse files, curated rows against the manifest, the name index, file modes."""
        from tunelake.cli import emit, get_config
        from tunelake.doctor import diagnose

        findings = diagnose(get_config(ctx), repair=not check)
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
