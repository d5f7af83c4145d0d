"""A listener's own data: take it away (one zip of their gold rows, Parquet and CSV) or have it deleted.

Both work from the user key of the signed-in account only. Deleting removes, under the workspace lock and in one
lake transaction, everything the lake holds for the listener — raw files, curated partitions, quarantine, name
index contributions, manifest entries (batches, user, consent, collector state, cursors) — then their token,
account and collector log lines, and runs a build so the warehouse's rows go too; the warehouse file from before
the build is removed as well, since it still holds them.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tunelake.lake import manifest, zones
from tunelake.lake.manifest import user_key_for
from tunelake.workspace import Workspace

DOWNLOAD_NAME = "my-tunelake-data.zip"


def user_tables(con: object) -> list[str]:
    """Every main table of the warehouse with a `user_key` column (the listener's gold rows live there)."""
    rows = con.execute("""SELECT DISTINCT table_name FROM information_schema.columns
                          WHERE column_name = 'user_key' AND table_schema = 'main' ORDER BY 1""").fetchall()
    return [r[0] for r in rows]


def export_zip(ws: Workspace, user_key: int) -> bytes:
    """A zip with one Parquet and one CSV file per warehouse table, holding only `user_key`'s rows."""
    from tunelake.warehouse.store import open_warehouse

    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="tunelake-mydata-") as tmp:
        con = open_warehouse(ws, read_only=True)
        try:
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for table in user_tables(con):
                    for fmt, opts in (("parquet", "FORMAT parquet"), ("csv", "FORMAT csv, HEADER true")):
                        out = Path(tmp) / f"{table}.{fmt}"
                        con.execute(f"COPY (SELECT * FROM {table} WHERE user_key = {int(user_key)}) "
                                    f"TO '{out}' ({opts})")
                        zf.write(out, f"{fmt}/{table}.{fmt}")
        finally:
            con.close()
    return buf.getvalue()


@dataclass
class Deleted:
    """What `delete_my_data` removed (lake paths, and the other files)."""

    lake_paths: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warehouse_rebuilt: bool = False


def _lake_paths(ws: Workspace, handle: str, user_key: int) -> list[str]:
    lake = ws.lake
    found: list[str] = []
    for zone in (zones.RAW, zones.QUARANTINE):
        for source in lake.listdir(zone):
            if handle in lake.listdir(f"{zone}/{source}"):
                found.append(f"{zone}/{source}/{handle}")
    for table in lake.listdir(zones.CURATED):
        if f"user_key={user_key}" in lake.listdir(zones.curated_table_dir(table)):
            found.append(f"{zones.curated_table_dir(table)}/user_key={user_key}")
    found += [p for p in lake.glob(f"{zones.NAME_INDEX_PENDING}/{user_key}-*")]
    found += [zones.batch_entry(b.batch_id) for b in manifest.list_batches(lake, handle=handle)]
    for folder in lake.listdir(zones.MANIFEST):  # users, consent, collect (collector state), …: <handle>.json
        if folder != "batches" and f"{handle}.json" in lake.listdir(f"{zones.MANIFEST}/{folder}"):
            found.append(f"{zones.MANIFEST}/{folder}/{handle}.json")
    for name in lake.listdir(f"{zones.MANIFEST}/cursors"):
        if (handle in name or str(user_key) in name) and f"{zones.MANIFEST}/cursors/{name}" not in found:
            found.append(f"{zones.MANIFEST}/cursors/{name}")
    return found


def _scrub_logs(ws: Workspace, handle: str, user_key: int) -> list[str]:
    """Drop the log lines that name the listener (the collector's JSON-lines log and its rotated files), keeping
    the rest; each file is replaced whole, mode 0600."""
    import os
    import secrets

    changed = []
    needles = (f'"{handle}"', str(user_key))
    for path in sorted((ws.root / "logs").glob("*.jsonl*")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        kept = [line for line in lines if not any(n in line for n in needles)]
        if len(kept) == len(lines):
            continue
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
            fh.writelines(kept)
        os.replace(tmp, path)
        changed.append(str(path))
    return changed


def delete_my_data(ws: Workspace, handle: str) -> Deleted:
    """Remove every trace of `handle` from the workspace and rebuild the warehouse without them."""
    from tunelake.curate.ingest import write_users_table
    from tunelake.pipeline.runner import build
    from tunelake.serve import accounts
    from tunelake.sources.spotify.auth import token_path
    from tunelake.warehouse.store import read_pointer, remove_warehouse_file, write_pointer

    zones.check_handle(handle)
    user_key = user_key_for(handle)
    out = Deleted()
    with ws.writing(command="serve delete-my-data"):
        lake = ws.lake
        with lake.transaction("delete my data"):
            out.lake_paths = _lake_paths(ws, handle, user_key)
            for rel in out.lake_paths:
                lake.delete(rel)
            if lake.exists(zones.curated_file("users")):
                write_users_table(lake)
        token = token_path(ws, handle)
        if token.exists():
            token.unlink()
            out.files.append(str(token))
        accounts.remove_account(ws, handle)
        out.files.append("account")
        out.files += _scrub_logs(ws, handle, user_key)
        before = read_pointer(ws)
        if before is not None:
            # From scratch, not incrementally: rows DELETEd from a DuckDB file stay in its blocks, so a file
            # updated in place (or a copy of one) would still hold the listener's bytes.
            build(ws, force=True)
            out.warehouse_rebuilt = True
            after = read_pointer(ws) or {}
            stale = before.get("file")
            if stale and stale != after.get("file"):
                remove_warehouse_file(ws.warehouse_dir / stale)
                write_pointer(ws, {**after, "previous": None})
    return out


__all__ = ["DOWNLOAD_NAME", "Deleted", "delete_my_data", "export_zip", "user_tables"]
