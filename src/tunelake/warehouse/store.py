"""The serving DuckDB files and the pointer to the current one: how a build's new file becomes what readers see,
how readers open it, and which files may go.

A build (or a step that changes the warehouse: `warehouse_writer`) writes a new `wh-<stamp>.duckdb` and switches
`CURRENT.json` to it in one atomic rename; the pointer also names the previous file, which a long-lived reader may
still hold. Only a holder of the workspace lock writes files or the pointer, and prunes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tunelake.errors import InputError, TunelakeError
from tunelake.workspace import Workspace

POINTER = "CURRENT.json"


def read_pointer(ws: Workspace) -> dict[str, Any] | None:
    path = ws.warehouse_dir / POINTER
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_pointer(ws: Workspace, info: dict[str, Any]) -> None:
    """Switch readers to a new warehouse file in one atomic rename."""
    path = ws.warehouse_dir / POINTER
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
    os.replace(tmp, path)


def new_warehouse_file(ws: Workspace, stamp: str) -> Path:
    """Where a build writes: a file no reader knows yet (`wh-<stamp>.duckdb`, stamp = the run id)."""
    ws.warehouse_dir.mkdir(parents=True, exist_ok=True)
    return ws.warehouse_dir / f"wh-{stamp}.duckdb"


def current_warehouse_file(ws: Workspace) -> Path:
    info = read_pointer(ws)
    if not info:
        raise TunelakeError(f"no warehouse in {ws.root} yet", hint="run `tunelake build` (or `tunelake demo`)")
    return ws.warehouse_dir / info["file"]


def check_read_only_sql(query: str) -> None:
    """Refuse anything but one read statement, parsed by DuckDB itself: a second statement, COPY, EXPORT,
    ATTACH, INSERT, SET, PRAGMA, INSTALL, CALL … are refused before the query reaches the warehouse (which is
    also opened sandboxed: see `open_warehouse`)."""

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InputError(f"SQL error: {str(exc).splitlines()[0]}", field="query") from None
    if len(statements) != 1:
        raise InputError(f"one SQL statement at a time, got {len(statements)}", field="query",
                         hint="run each query on its own")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:  # EXPLAIN ANALYZE would run what it explains
        raise InputError(f"only read-only queries are allowed, not {kind.name}", field="query",
                         hint="SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW or SUMMARIZE")


def open_warehouse(ws: Workspace, read_only: bool = True, *, sandboxed: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the current warehouse. Readers open the file the pointer names; a build writes a new file
    and switches the pointer, so a reader never waits for a build and never sees a half-built table.

    A writer prunes files older than the previous one: a reader that read the pointer just before two switches
    in a row finds its file gone, and reads the pointer again. `sandboxed`: for SQL typed by a user — no file
    other than the warehouse may be read or written, no extension loaded, and no setting changed."""
    config = ({"enable_external_access": False, "autoinstall_known_extensions": False,
               "autoload_known_extensions": False} if sandboxed else {})
    for attempt in range(3):
        path = current_warehouse_file(ws)
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException:
            if path.exists() or attempt == 2:
                raise
    con.execute("SET TimeZone = 'UTC'")
    if sandboxed:
        con.execute("SET lock_configuration = true")
    return con


@contextmanager
def warehouse_writer(ws: Workspace, step: str = "write") -> Iterator[duckdb.DuckDBPyConnection]:
    """Change the warehouse without disturbing readers: copy the current file, yield a read-write connection to
    the copy, and switch the pointer to it when the block ends without error (the copy is discarded otherwise).

    Steps that add tables after a build (features, segments, recommendations) write through this.
    """


    with ws.writing(command=f"write warehouse ({step})"):
        pointer = read_pointer(ws)
        if not pointer:
            raise TunelakeError(f"no warehouse in {ws.root} yet", hint="run `tunelake build` first")
        src = ws.warehouse_dir / pointer["file"]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        dst = ws.warehouse_dir / f"wh-{stamp}.duckdb"
        shutil.copyfile(src, dst)
        con = duckdb.connect(str(dst))
        con.execute("SET TimeZone = 'UTC'")
        try:
            yield con
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            remove_warehouse_file(dst)
            raise
        con.close()
        write_pointer(ws, {**pointer, "file": dst.name, "updated_by": step, "previous": src.name})
        prune_warehouse_files(ws)


def remove_warehouse_file(path: Path) -> None:
    """Delete a warehouse file with its write-ahead log: a stale .wal left beside a name would be replayed into
    whatever file later takes that name."""
    path.unlink(missing_ok=True)
    Path(str(path) + ".wal").unlink(missing_ok=True)


def prune_warehouse_files(ws: Workspace) -> list[str]:
    """Drop every warehouse file but the current one and the previous one (which a reader may still hold), and
    what a stopped writer left: files it was building, scratch files, a pointer it was writing. Only a holder of
    the workspace lock calls this, so no other process is writing any of them. Returns the names removed."""
    pointer = read_pointer(ws) or {}
    keep = {pointer.get("file"), pointer.get("previous")}
    removed = []
    for path in sorted(ws.warehouse_dir.glob("wh-*.duckdb")):
        if path.name not in keep:
            remove_warehouse_file(path)
            removed.append(path.name)
    for path in sorted(ws.warehouse_dir.glob("wh-*.duckdb.wal")):
        if path.name[: -len(".wal")] not in keep:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    for pattern in ("spill/*", f"{Path(POINTER).stem}.tmp-*"):  # scratch files and DuckDB's spill
        for path in sorted(ws.warehouse_dir.glob(pattern)):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path.name)
    return removed
