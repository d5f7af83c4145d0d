"""`tunelake export …`: Synapse T-SQL, the gold Parquet star schema and Power BI connection files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table as RichTable

from tunelake.cli.common import console, workspace

export_app = typer.Typer(
    name="export",
    help="Export the warehouse: Synapse T-SQL, gold Parquet (one folder per table), Power BI files.",
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


def register(app: typer.Typer) -> None:
    """Add the `export` sub-app to the main CLI."""
    app.add_typer(export_app, name="export")
