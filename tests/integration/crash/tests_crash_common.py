"""What the crash tests share: the fault-injecting driver and a picture of the lake that must not depend on a
crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from tunelake.lake import manifest
from tunelake.lake.store import Lake

DRIVER = Path(__file__).with_name("driver.py")


def _env(ws: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "TUNELAKE_HOME": str(ws), "PYTHONPATH": str(Path(__file__).parents[3] / "src"), **extra}


def run_driver(ws: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), *args], env=_env(ws, **env), capture_output=True, text=True,
                          timeout=120)


def lake_state(ws: Path) -> dict[str, object]:
    """Everything an import leaves in the lake that must not depend on a crash: curated rows, manifest entries
    (without their import time), quarantine and raw files by name, and any hidden leftover."""
    lake = Lake(str(ws / "lake"))
    curated = {}
    for table in ("plays", "saved_tracks", "playlist_items"):
        rels = [r for r in lake.glob(f"curated/{table}/user_key=*/data.parquet")]
        t = pa.concat_tables([lake.read_parquet(r) for r in rels], promote_options="default") if rels else None
        curated[table] = None if t is None else sorted(map(repr, t.to_pylist()))
    batches = sorted((b.batch_id, b.source, b.handle, b.name, b.read, b.accepted, b.duplicates, b.merged,
                      tuple(sorted(b.quarantined.items())), b.excluded, b.raw_path)
                     for b in manifest.list_batches(lake))
    files = sorted(str(p.relative_to(ws / "lake")) for p in (ws / "lake").rglob("*") if p.is_file())
    hidden = [f for f in files if any(part.startswith(".") for part in Path(f).parts)]
    quarantine = {f: (ws / "lake" / f).read_bytes() for f in files if f.startswith("quarantine/")}
    users = sorted((u["handle"], u["user_key"], u.get("timezone")) for u in manifest.list_users(lake))
    return {"curated": curated, "batches": batches, "hidden": hidden, "quarantine": quarantine, "users": users,
            "files": [f for f in files if f not in hidden and not f.startswith("_manifest/txn")]}


