"""The `tunelake` command. Thin: every command calls a library function and prints its result; this package is the
one place that formats output and turns errors into one-line messages and exit codes.

One module per command group: data (generate, import, import-catalog), pipeline (run, build, status, doctor),
query (sql, config), analytics (insights, segment, recommend), social (consent, compare, wrapped), api (auth, pull,
playlist, fake-spotify), export, app (dashboard, report), serve (serve, users), demo.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from tunelake import __version__
from tunelake.cli import analytics, api, collect, data, demo, export, pipeline, query, serve, social
from tunelake.cli import app as app_cmds
from tunelake.cli.common import console, err_console, log_to_stderr
from tunelake.errors import TunelakeError
from tunelake.workspace import open_workspace

app = typer.Typer(
    name="tunelake",
    help="Spotify listening data → lake → warehouse → segments, recommendations, dashboard and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


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
    log_to_stderr()
    ctx.ensure_object(dict)["workspace"] = open_workspace(workspace, {"engine": engine, "lake_url": lake},
                                                          debug=debug)


for _group in (data, pipeline, query, analytics, social, api, collect, export, app_cmds, serve, demo):
    _group.register(app)


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
