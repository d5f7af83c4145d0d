"""The `tunelake` command. Thin: every command calls a library function, prints its result, and this module is
the one place that turns errors into one-line messages and exit codes."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable

from tunelake import __version__
from tunelake.errors import TunelakeError
from tunelake.settings import OTHER_ENVIRONMENT, SETTINGS
from tunelake.workspace import Workspace, open_workspace

app = typer.Typer(
    name="tunelake",
    help="Spotify listening data → lake → warehouse → segments, recommendations, dashboard and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
# Wide output when piped (rich would wrap at 80 columns); errors never wrap, so they stay one line.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


# --- shared plumbing ------------------------------------------------------------------------------------------


def get_config(ctx: typer.Context) -> Workspace:
    return ctx.ensure_object(dict)["config"]


@contextmanager
def progress_bar(description: str, unit: str = "") -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar fed by callbacks (done, total, label); hidden when output is not a terminal."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn() if not unit else
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), TimeRemainingColumn(),
               TextColumn("[dim]{task.fields[label]}")]
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as prog:
        task = prog.add_task(description, total=None, label="")

        def update(done: int, total: int, label: str = "") -> None:
            prog.update(task, completed=done, total=total, label=label)

        yield update


def emit(rows: list[dict[str, Any]], fmt: str, title: str | None = None) -> None:
    """Print rows as a table, CSV or JSON."""
    if fmt == "json":
        console.print_json(json.dumps(rows, default=str))
        return
    if fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0].keys()) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
        return
    table = RichTable(title=title, show_lines=False)
    for key in rows[0].keys() if rows else []:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row.values()])
    console.print(table)


def _version(value: bool) -> None:
    if value:
        console.print(f"tunelake {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    workspace: Path = typer.Option(None, "--workspace", "-w", envvar="TUNELAKE_HOME",
                                   help="Workspace folder (lake, warehouse, secrets). Default ./tunelake-data"),
    engine: str = typer.Option(None, "--engine", help="Warehouse engine: duckdb (default) or spark"),
    lake: str = typer.Option(None, "--lake", help="Lake URL (folder, az://…, abfs://…); default <workspace>/lake"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version"),
) -> None:
    """Global options apply to every command."""
    _log_to_stderr()
    ctx.ensure_object(dict)["config"] = open_workspace(workspace, {"engine": engine, "lake_url": lake}, debug=debug)


def _log_to_stderr() -> None:
    """Warnings of the library (a writer waiting for the workspace lock, a recovery) as one line each on stderr."""
    import logging

    logger = logging.getLogger("tunelake")
    if not any(getattr(h, "_tunelake", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handler._tunelake = True  # type: ignore[attr-defined]
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


# --- commands -------------------------------------------------------------------------------------------------


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the synthetic world into"),
    users: int = typer.Option(100, "--users", "-n", min=1, help="Number of listeners"),
    days: int = typer.Option(180, "--days", "-d", min=1, help="Days of history per listener"),
    seed: int = typer.Option(42, "--seed", "-s", help="Random seed (same seed, same bytes)"),
    account_data: bool = typer.Option(True, "--account-data/--no-account-data",
                                      help="Also write the account-data view (StreamingHistory_music_N.json …)"),
    legacy_users: int = typer.Option(0, "--legacy-users", help="Write the last N listeners in the old endsong format"),
) -> None:
    """Write a deterministic synthetic Spotify world: exports per listener, catalogue, ground truth."""
    from tunelake.synthetic.world import generate_world

    with progress_bar("Generating listeners") as update:
        summary = generate_world(out, users=users, days=days, seed=seed, account_data=account_data,
                                 legacy_users=legacy_users, progress=lambda d, t: update(d, t, ""))
    console.print(
        f"[green]Wrote[/] {summary.users} listeners, {summary.track_plays:,} track plays, "
        f"{summary.episode_plays:,} episode plays in {summary.files:,} files "
        f"({summary.bytes_written / 1e6:,.1f} MB) to {out}"
    )


def print_import_summary(summary: Any) -> None:
    rows = []
    for f in summary.files:
        rows.append({
            "file": Path(f.origin.split("!")[-1]).name, "status": f.status, "read": f.read, "accepted": f.accepted,
            "duplicates": f.duplicates, "merged": f.merged,
            "quarantined": ", ".join(f"{k}={v}" for k, v in sorted(f.quarantined.items())) or "0",
            "not music": f.excluded,
        })
    if len(rows) <= 30:
        emit(rows, "table", title=f"Import for {summary.handle}")
    totals = summary.as_dict()
    q = totals["quarantined"]
    console.print(
        f"[bold]{summary.handle}[/]: read {totals['read']:,} · accepted {totals['accepted']:,} · "
        f"duplicates {totals['duplicates']:,} · merged {totals['merged']:,} · quarantined "
        f"{sum(q.values()):,}{' (' + ', '.join(f'{k} {v}' for k, v in sorted(q.items())) + ')' if q else ''} · "
        f"not music {totals['excluded_from_streams']:,} · files already imported {totals['already_imported']}"
    )
    if totals.get("to_resolve"):
        console.print(
            f"resolved {totals['resolved']:,}/{totals['to_resolve']:,} name-only rows to track ids "
            f"({totals['resolution_rate']:.1%}) · stored account rows replaced by extended history "
            f"{totals.get('replaced_account_rows', 0):,}")
    for table, counts in sorted((totals.get("by_table") or {}).items()):
        if table != "plays" and counts.get("read"):
            console.print(f"{table}: read {counts['read']:,} · accepted {counts.get('accepted', 0):,} · "
                          f"duplicates {counts.get('duplicates', 0):,} · quarantined {counts.get('quarantined', 0):,}")
    unknown = sorted({u for f in summary.files for u in f.unknown_fields})
    if unknown:
        console.print(f"[yellow]Unknown fields kept in raw:[/] {', '.join(unknown)}")


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files, folders or zips of Spotify exports"),
    user: str = typer.Option(..., "--user", "-u", help="Workspace handle of the listener these files belong to"),
    tz: str = typer.Option(None, "--tz", help="IANA timezone of the listener (default: inferred from conn_country)"),
    pii: str = typer.Option(None, "--pii", help="drop (default) or pseudonymize personal fields"),
) -> None:
    """Import Spotify privacy exports (extended streaming history, account data, library, playlists)."""
    from tunelake.ingest import import_paths

    ws = get_config(ctx)
    if tz:
        _check_tz(tz)
    if pii and pii not in ("drop", "pseudonymize"):
        raise TunelakeError(f"--pii must be drop or pseudonymize, not {pii!r}")
    with progress_bar(f"Importing {user}") as update:
        summary = import_paths(ws, [str(p) for p in paths], user, timezone=tz, pii=pii, progress=update)
    print_import_summary(summary)
    if summary.errors:
        for e in summary.errors:
            err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2)


def _check_tz(tz: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TunelakeError(f"unknown timezone {tz!r}", hint="use an IANA name such as Europe/Berlin") from None


@app.command("import-catalog")
def import_catalog_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Catalogue CSV/Parquet file, or a folder with tracks/artists/albums"),
) -> None:
    """Import a track catalogue with audio features and genres (plain track_id layout or TidyTuesday)."""
    from tunelake.sources.catalog import import_catalog

    ws = get_config(ctx)
    with ws.writing(command="import-catalog"), progress_bar("Importing catalogue") as update:
        s = import_catalog(ws.lake, path, progress=update)
    if s.already_imported:
        console.print(f"{path}: already imported, nothing to do")
        return
    console.print(f"Catalogue ({s.layout} layout): {s.tracks:,} tracks, {s.artists:,} artists, {s.albums:,} albums")
    for reason, n in s.rejected.items():
        console.print(f"[yellow]rejected[/] {n} rows: {reason}")


@app.command()
def build(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Rebuild even when nothing changed"),
) -> None:
    """Build the star schema from the curated zone (does nothing when nothing changed)."""
    from tunelake.warehouse.build import build as build_warehouse

    ws = get_config(ctx)
    with progress_bar("Building warehouse") as update:
        info = build_warehouse(ws, force=force, progress=update)
    if info.skipped:
        console.print("Warehouse is up to date: nothing new since the last build.")
        return
    console.print(f"Built {info.file} in {info.seconds:.1f}s from {info.rows_in:,} curated plays")
    emit([{"table": k, "rows": v} for k, v in info.rows.items() if not k.startswith("int_")], "table")


@app.command()
def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="One read-only SQL query on the warehouse"),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json"),
    limit: int = typer.Option(1000, "--limit", help="Rows shown at most (table format)"),
) -> None:
    """Run one read-only SQL query on the warehouse (DuckDB dialect): SELECT, WITH, FROM, VALUES, DESCRIBE,
    SHOW or SUMMARIZE. Nothing outside the warehouse can be read or written, and no setting changed."""
    import duckdb

    from tunelake.warehouse.store import check_read_only_sql, open_warehouse

    if fmt not in ("table", "csv", "json"):
        raise TunelakeError(f"--format must be table, csv or json, not {fmt!r}")
    check_read_only_sql(query)
    con = open_warehouse(get_config(ctx), read_only=True, sandboxed=True)
    try:
        cur = con.execute(query)
        if cur.description is None:
            return
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall() if fmt != "table" else cur.fetchmany(limit)
    except duckdb.Error as exc:
        raise TunelakeError(f"SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    emit([dict(zip(cols, r, strict=True)) for r in rows], fmt)


@app.command("config")
def config_cmd(ctx: typer.Context) -> None:
    """Show every setting, its value and where to change it."""
    ws = get_config(ctx)
    values = ws.settings.as_dict()
    emit([{"setting": s.name, "value": values[s.name], "env": s.env, "help": s.help} for s in SETTINGS.values()],
         "table", title=f"Settings ({ws.root / 'tunelake.toml'})")
    emit([{"environment": k, "help": v} for k, v in OTHER_ENVIRONMENT.items()], "table",
         title="Other environment variables read")


@app.command()
def demo(
    ctx: typer.Context,
    users: int = typer.Option(120, "--users", "-n", min=2, help="Number of synthetic listeners"),
    days: int = typer.Option(180, "--days", "-d", min=7, help="Days of history"),
    seed: int = typer.Option(42, "--seed", "-s", help="Random seed"),
    source: str = typer.Option("export", "--source", help="export (files) or api (through the fake Spotify API)"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the dashboard at the end"),
) -> None:
    """Generate a synthetic world and run everything on it: import → build → quality gates → segments →
    recommendations → report, then serve the dashboard (--no-serve stops after the report)."""
    from tunelake.demo import run_demo

    ws = get_config(ctx)
    result = run_demo(ws, users=users, days=days, seed=seed, source=source, serve=serve,
                      progress_factory=progress_bar, say=console.print)
    console.print(result.summary_text)


# Commands that live in their own modules register themselves here.
for _module in ("tunelake.cli_api", "tunelake.cli_export", "tunelake.cli_pipeline", "tunelake.cli_analytics",
                "tunelake.cli_app"):
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise


def main() -> None:
    """Entry point: runs the app and turns errors into one line on stderr and a non-zero exit."""
    debug = "--debug" in sys.argv or os.environ.get("TUNELAKE_DEBUG") == "1"
    try:
        app()
    except TunelakeError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {exc.one_line()}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # an internal error: still one line unless --debug
        if debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        err_console.print(f"[red]internal error:[/] {type(exc).__name__}: {msg} (run with --debug for details)",
                          highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
