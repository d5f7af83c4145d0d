"""`tunelake dashboard` and `tunelake report`: the two ways people look at the results."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def dashboard(
        ctx: typer.Context,
        host: str = typer.Option(None, "--host", help="Interface to bind (default 127.0.0.1, setting "
                                 "dashboard_host); anything else exposes the data to the network (there is no login). "
                                 "Only loopback names, this address and dashboard_allowed_hosts are answered"),
        port: int = typer.Option(None, "--port", "-p", min=1, max=65535,
                                 help="Port to serve on (default 8050, setting dashboard_port)"),
    ) -> None:
        """Serve the interactive dashboard (read-only) over the current warehouse."""
        from tunelake.cli.common import err_console, workspace
        from tunelake.dashboard.app import serve

        ws = workspace(ctx)
        serve(ws, host=host or ws.settings.dashboard_host, port=port or ws.settings.dashboard_port,
              say=lambda s: err_console.print(f"[yellow]{s}[/]" if s.startswith("WARNING") else s, highlight=False))

    @app.command()
    def report(
        ctx: typer.Context,
        out: Path = typer.Option(None, "--out", "-o", help="HTML file to write (default <workspace>/report.html)"),
        pdf: bool = typer.Option(False, "--pdf", help="Also render a PDF next to it (headless Chromium or "
                                 "WeasyPrint)"),
    ) -> None:
        """Write the self-contained project report (HTML with embedded figures; optionally PDF)."""
        from tunelake.cli.common import console, workspace
        from tunelake.report.build import write_report

        ws = workspace(ctx)
        path = write_report(ws, out or ws.root / "report.html", pdf=pdf)
        console.print(f"[green]Wrote[/] {path}")
        if pdf:
            console.print(f"[green]Wrote[/] {path.with_suffix('.pdf')}")
