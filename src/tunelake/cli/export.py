"""`tunelake export …`: Synapse T-SQL, the gold Parquet star schema, a Power BI Project, and a listener's plays
as ListenBrainz listens."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table as RichTable

from tunelake.cli.common import console, progress_bar, workspace

export_app = typer.Typer(
    name="export",
    help="Export the warehouse (Synapse T-SQL, gold Parquet, a Power BI Project) or a listener's plays (ListenBrainz).",
    no_args_is_help=True,
)


@export_app.command("synapse")
def synapse_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the T-SQL scripts and README into"),
    storage_url: str = typer.Option(
        None, "--storage-url",
        help="Gold Parquet folder as Synapse sees it: https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH "
        "(a marked placeholder when omitted)",
    ),
    schema: str = typer.Option("tunelake", "--schema", help="Schema to create the tables and views in"),
    credential: str = typer.Option(
        "managed_identity", "--credential", help="COPY INTO credential: managed_identity or sas (placeholder)"
    ),
    with_analytics: bool = typer.Option(
        False, "--with-analytics", help="Also the segment, recommendation and quality tables the Power BI report reads"
    ),
) -> None:
    """Generate Synapse dedicated-pool DDL, COPY INTO, aggregate CTAS and serverless views from the specs."""
    from tunelake.warehouse.powerbi.model import model_tables
    from tunelake.warehouse.synapse import export_synapse

    tables = [t.name for t in model_tables()] if with_analytics else None
    files = export_synapse(out, storage_url, tables, schema=schema, credential=credential)
    for path in files:
        console.print(f"  {path}")
    console.print(f"[green]Wrote[/] {len(files)} files to {out}; run them in the order in {out / 'README.md'}")
    if storage_url is None:
        console.print("[yellow]No --storage-url given:[/] replace the <ACCOUNT>/<CONTAINER>/<PATH> placeholders")


@export_app.command("gold")
def gold_cmd(
    ctx: typer.Context,
    out: str = typer.Option(..., "--out", "-o", help="Lake URL to write to: a folder, az://container/path, abfs://…"),
    table: list[str] = typer.Option(None, "--table", "-t", help="Only this table (repeatable); default all"),
    with_analytics: bool = typer.Option(
        False, "--with-analytics", help="Also the segment, recommendation and quality tables the Power BI report reads"
    ),
) -> None:
    """Write the warehouse star schema as Parquet, one folder per table (<out>/<table>/part-N.parquet)."""
    from tunelake.warehouse.exports import export_gold
    from tunelake.warehouse.powerbi.model import model_tables
    from tunelake.warehouse.store import open_warehouse

    if with_analytics and not table:
        table = [t.name for t in model_tables()]

    ws = workspace(ctx)
    con = open_warehouse(ws, read_only=True)
    try:
        with console.status("Exporting gold Parquet…"):
            counts = export_gold(con, out, table or None)
    finally:
        con.close()
    view = RichTable("table", "rows", title=f"Gold Parquet in {out}")
    for name, rows in counts.items():
        view.add_row(name, f"{rows:,}")
    console.print(view)
    console.print(f"[green]Wrote[/] {len(counts)} tables, {sum(counts.values()):,} rows")


@export_app.command("powerbi")
def powerbi_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the Power BI Project (tunelake.pbip) into"),
    source: str = typer.Option(
        "parquet", "--source", help="Where Power BI reads the tables: parquet (the gold folder) or synapse"
    ),
    location: str = typer.Option(
        None, "--location",
        help="parquet: the gold folder (local path, https://ACCOUNT.dfs.core.windows.net/CONTAINER/PATH or "
        "abfss://…); synapse: the SQL endpoint (WORKSPACE.sql.azuresynapse.net). A placeholder when omitted",
    ),
    database: str = typer.Option(None, "--database", help="synapse: the dedicated SQL pool"),
    schema: str = typer.Option("tunelake", "--schema", help="synapse: the schema `tunelake export synapse` used"),
    mode: str = typer.Option(None, "--mode", help="synapse: DirectQuery (default) or Import; parquet is imported"),
) -> None:
    """Write a Power BI Project: the semantic model (TMDL: tables, relationships, DAX measures) and a six-page report
    (PBIR), over the gold Parquet or the Synapse pool. Open tunelake.pbip in Power BI Desktop."""
    from tunelake.warehouse.powerbi import export_powerbi_project, make_source

    src = make_source(source, location, database=database, schema=schema, mode=mode)
    files = export_powerbi_project(out, src)
    console.print(f"[green]Wrote[/] a Power BI Project ({len(files)} files, {src.kind}, {src.mode}): "
                  f"open {out / 'tunelake.pbip'} in Power BI Desktop")
    export = "tunelake export gold --out DIR" if src.kind == "parquet" else "tunelake export synapse --out DIR"
    console.print(f"It reads the gold tables and the analytics/quality tables: `{export} --with-analytics`")
    if location is None or (source == "synapse" and database is None):
        console.print("[yellow]Placeholders:[/] set the source in Power BI (Transform data → Edit parameters) or "
                      "rerun with --location" + (" and --database" if source == "synapse" else ""))


@export_app.command("listenbrainz")
def listenbrainz_cmd(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Workspace handle of the listener"),
    out: Path = typer.Option(None, "--out", "-o",
                             help="ListenBrainz import file to write (default listenbrainz-<user>.json unless "
                                  "--submit)"),
    submit: bool = typer.Option(False, "--submit", help="Send the listens to the server with liblistenbrainz "
                                                        "(token from LISTENBRAINZ_TOKEN)"),
    server: str = typer.Option("https://api.listenbrainz.org", "--server",
                               help="ListenBrainz-compatible API root to --submit to"),
) -> None:
    """Write the listener's plays as ListenBrainz listens (the JSON of its submit-listens API), or --submit them."""
    import os

    from tunelake.curate.listens_export import export_listenbrainz

    ws = workspace(ctx)
    if out is None and not submit:
        out = Path(f"listenbrainz-{user}.json")
    with progress_bar("Submitting listens") as update:
        r = export_listenbrainz(ws, user, out=out, submit=submit, token=os.environ.get("LISTENBRAINZ_TOKEN"),
                                server=server, progress=lambda d, t: update(d, t, ""))
    skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(r.skipped.items())) or "none"
    console.print(f"{user}: {r.listens:,} listens (left out: {skipped})")
    if r.out:
        console.print(f"[green]Wrote[/] {r.out}")
    if submit:
        console.print(f"[green]Submitted[/] {r.submitted:,} listens to {server} in {r.requests} requests"
                      + (f", waited {r.waited_s:.1f} s for its rate limit" if r.waited_s else ""))


def register(app: typer.Typer) -> None:
    """Add the `export` sub-app to the main CLI."""
    app.add_typer(export_app, name="export")
