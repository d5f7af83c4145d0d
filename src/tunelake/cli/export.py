"""`tunelake export …`: Synapse T-SQL, the gold Parquet star schema, Power BI connection files, and a listener's
plays as ListenBrainz listens."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table as RichTable

from tunelake.cli.common import console, progress_bar, workspace

export_app = typer.Typer(
    name="export",
    help="Export the warehouse (Synapse T-SQL, gold Parquet, Power BI files) or a listener's plays (ListenBrainz).",
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
) -> None:
    """Generate Synapse dedicated-pool DDL, COPY INTO, aggregate CTAS and serverless views from the specs."""
    from tunelake.warehouse.synapse import export_synapse

    files = export_synapse(out, storage_url, schema=schema, credential=credential)
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
) -> None:
    """Write the warehouse star schema as Parquet, one folder per table (<out>/<table>/part-N.parquet)."""
    from tunelake.warehouse.exports import export_gold
    from tunelake.warehouse.store import open_warehouse

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
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the .pbids file and POWERBI.md into"),
    kind: str = typer.Option("synapse", "--kind", help="SQL endpoint: synapse or postgresql"),
    server: str = typer.Option(None, "--server", help="Server (Synapse: <workspace>.sql.azuresynapse.net)"),
    database: str = typer.Option(None, "--database", help="Database (Synapse: the dedicated SQL pool name)"),
    mode: str = typer.Option(None, "--mode", help="DirectQuery or Import (default: per kind)"),
    gold_url: str = typer.Option(None, "--gold-url", help="Gold Parquet folder to name in the guide"),
) -> None:
    """Write a Power BI data-source file (.pbids) for a SQL endpoint and a guide to the gold Parquet."""
    from tunelake.warehouse.exports import export_powerbi

    files = export_powerbi(out, kind, server, database, mode=mode, gold_url=gold_url)
    for path in files:
        console.print(f"  {path}")
    console.print(f"[green]Wrote[/] {len(files)} files to {out}")
    if server is None or database is None:
        console.print("[yellow]No --server/--database given:[/] the .pbids holds placeholders; edit it first")


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
