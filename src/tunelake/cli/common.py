"""What every command shares: the consoles, the workspace the global options opened, progress bars, and how rows
are printed. cli/ is the only package that prints; everything below it returns data and raises typed errors."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

from tunelake.workspace import Workspace, open_workspace

# Wide output when piped (rich would wrap at 80 columns); errors never wrap, so they stay one line.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def workspace(ctx: typer.Context) -> Workspace:
    """The workspace the global options opened (or the default one, for a command run on its own)."""
    obj = ctx.find_root().ensure_object(dict)
    if "workspace" not in obj:
        obj["workspace"] = open_workspace()
    return obj["workspace"]


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


def log_to_stderr() -> None:
    """Warnings of the library (a writer waiting for the workspace lock, a recovery) as one line each on stderr."""
    logger = logging.getLogger("tunelake")
    if not any(getattr(h, "_tunelake", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handler._tunelake = True  # type: ignore[attr-defined]
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)
