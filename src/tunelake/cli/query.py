"""`tunelake sql` and `tunelake config`: looking into the warehouse and the settings."""

from __future__ import annotations

import typer

from tunelake.cli.common import emit, workspace
from tunelake.errors import TunelakeError
from tunelake.settings import OTHER_ENVIRONMENT, SETTINGS


def register(app: typer.Typer) -> None:
    app.command()(sql)
    app.command("config")(config_cmd)


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
    con = open_warehouse(workspace(ctx), read_only=True, sandboxed=True)
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


def config_cmd(ctx: typer.Context) -> None:
    """Show every setting, its value and where to change it."""
    ws = workspace(ctx)
    values = ws.settings.as_dict()
    emit([{"setting": s.name, "value": values[s.name], "env": s.env, "help": s.help} for s in SETTINGS.values()],
         "table", title=f"Settings ({ws.root / 'tunelake.toml'})")
    emit([{"environment": k, "help": v} for k, v in OTHER_ENVIRONMENT.items()], "table",
         title="Other environment variables read")
