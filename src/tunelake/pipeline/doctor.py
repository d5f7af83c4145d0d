"""`tunelake doctor`: check a workspace, repair what can be repaired, and say what it did.

It holds the workspace lock (so it waits for a running writer) and runs, in order: the lake recovery (finish
committed transactions, remove staged and temporary files), runs left `running` by a stopped process, the
warehouse pointer and its files, curated rows against the manifest (rows of a batch that never committed are what
a crash of a version before the commit protocol left; they are removed, and a re-import adds them back), the name
index, and the modes of secrets, raw and quarantine files.
"""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tunelake.lake import manifest, zones
from tunelake.lake.lock import last_takeover
from tunelake.lake.store import Lake
from tunelake.lake.txn import recover
from tunelake.settings import private_dir
from tunelake.workspace import Workspace


@dataclass
class Finding:
    check: str
    status: str  # ok | repaired | problem
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(ws: Workspace, *, repair: bool = True) -> list[Finding]:
    """Every check; with `repair`, fix what can be fixed. Holds the workspace lock throughout."""
    with ws.writing(command="doctor"):
        lake = ws.lake
        out = []
        crashed = last_takeover(ws.root)
        if crashed:
            out.append(Finding("lock", "repaired", f"the last writer (pid {crashed.get('pid')}, "
                                                   f"{crashed.get('command')}) stopped mid-write; the lake was "
                                                   "recovered when this command took the lock over"))
        else:
            out.append(Finding("lock", "ok", "the last writer finished cleanly"))
        out += [_lake_recovery(lake, repair), _runs(lake, repair), *_warehouse(ws, repair),
                *_curated(lake, repair), _index(lake, repair), _modes(ws, lake, repair)]
    return out


def _lake_recovery(lake: Lake, repair: bool) -> Finding:
    if not repair:
        leftovers = [p for p in lake.fs.find(lake.root) if os.path.basename(p).startswith(".")]
        pending = [n for n in lake.listdir("_manifest/txn") if n.endswith(".json")]
        if leftovers or pending:
            return Finding("lake", "problem", f"{len(pending)} unfinished commits, {len(leftovers)} staged or "
                                              "temporary files (run `tunelake doctor` to finish or remove them)")
        return Finding("lake", "ok", "no unfinished commit, no staged or temporary file")
    done = recover(lake)
    if not done.changed:
        return Finding("lake", "ok", "no unfinished commit, no staged or temporary file")
    return Finding("lake", "repaired", f"finished {len(done.rolled_forward)} committed transactions, removed "
                                       f"{len(done.removed)} staged or temporary files of unfinished ones")


def _runs(lake: Lake, repair: bool) -> Finding:
    from tunelake.pipeline.runlog import mark_interrupted, read_run_logs

    running = [r["run_id"] for r in read_run_logs(lake, last=20) if r.get("status") == "running"]
    if not running:
        return Finding("run log", "ok", "no run left running")
    if not repair:
        return Finding("run log", "problem", f"{len(running)} runs still marked running: {', '.join(running)}")
    stopped = mark_interrupted(lake)
    return Finding("run log", "repaired", f"marked {len(stopped)} runs stopped mid-way as interrupted: "
                                          f"{', '.join(stopped)}")


def _warehouse(ws: Workspace, repair: bool) -> list[Finding]:
    import duckdb

    from tunelake.warehouse.store import POINTER, prune_warehouse_files, read_pointer, write_pointer

    out = []
    try:
        pointer = read_pointer(ws)
    except ValueError:
        pointer = {"file": None}
        out.append(Finding("warehouse pointer", "problem", f"{ws.warehouse_dir / POINTER} is not valid JSON"))
    if pointer is None:
        return [Finding("warehouse", "ok", "no warehouse built yet")]
    target = ws.warehouse_dir / str(pointer.get("file"))
    try:
        duckdb.connect(str(target), read_only=True).close()
        out.append(Finding("warehouse", "ok", f"{target.name} opens"))
    except (duckdb.Error, OSError) as exc:
        prev = pointer.get("previous")
        if repair and prev and (ws.warehouse_dir / prev).exists():
            write_pointer(ws, {**pointer, "file": prev, "previous": None, "updated_by": "doctor"})
            out.append(Finding("warehouse", "repaired", f"{target.name} cannot be opened ({str(exc)[:80]}); "
                                                        f"pointed readers back at {prev}; run `tunelake build`"))
        else:
            out.append(Finding("warehouse", "problem", f"{target.name} cannot be opened ({str(exc)[:80]}): run "
                                                       "`tunelake build --force`"))
    orphans = [p.name for p in sorted(ws.warehouse_dir.glob("wh-*.duckdb"))
               if p.name not in (pointer.get("file"), pointer.get("previous"))]
    if orphans and repair:
        removed = prune_warehouse_files(ws)
        out.append(Finding("warehouse files", "repaired", f"removed {len(removed)} files a stopped build or "
                                                          f"write left: {', '.join(removed[:5])}"))
    elif orphans:
        out.append(Finding("warehouse files", "problem", f"{len(orphans)} files no reader uses"))
    else:
        out.append(Finding("warehouse files", "ok", "only the current and the previous warehouse file"))
    return out


def _curated(lake: Lake, repair: bool) -> list[Finding]:
    """Per user: curated rows whose batch never committed, and the reconciliation read − quarantined −
    duplicates − merged = curated rows."""
    from tunelake.warehouse.quality import is_play_batch

    batches = manifest.list_batches(lake)
    committed = {b.batch_id for b in batches}
    out = []
    orphan_total = 0
    for table in ("plays", "saved_tracks", "playlist_items"):
        for rel in lake.glob(f"{zones.curated_table_dir(table)}/user_key=*/data.parquet"):
            rows = lake.read_parquet(rel)
            if "batch_id" not in rows.column_names or not rows.num_rows:
                continue
            known = pc.is_in(rows["batch_id"], pa.array(sorted(committed), pa.string()))
            orphans = rows.num_rows - (pc.sum(pc.cast(known, pa.int64())).as_py() or 0)
            if orphans and repair:
                with lake.transaction(f"doctor: {rel}"):
                    lake.write_parquet(rel, rows.filter(known))
            orphan_total += orphans
    if orphan_total:
        out.append(Finding("curated rows", "repaired" if repair else "problem",
                           f"{orphan_total} rows of batches that never committed (a crash of an older version)"
                           + (" removed; import the same files again to add them back" if repair else "")))
    expected: dict[int, int] = {}
    for b in batches:
        if is_play_batch(b):
            expected[b.user_key] = expected.get(b.user_key, 0) + b.read - b.quarantined_total - b.duplicates - b.merged
    actual = {}
    for rel in lake.glob(f"{zones.curated_table_dir('plays')}/user_key=*/data.parquet"):
        actual[int(rel.split("user_key=")[1].split("/")[0])] = lake.read_parquet(rel, columns=["play_id"]).num_rows
    handles = {u["user_key"]: u["handle"] for u in manifest.list_users(lake)}
    off = {uk: (expected.get(uk, 0), actual.get(uk, 0)) for uk in set(expected) | set(actual)
           if expected.get(uk, 0) != actual.get(uk, 0)}
    if off:
        detail = "; ".join(f"{handles.get(uk, uk)}: manifest says {e}, curated has {a}"
                           for uk, (e, a) in sorted(off.items())[:5])
        out.append(Finding("reconciliation", "problem", detail + " (re-import the listener's files with "
                                                                 "`tunelake import … --user NAME`)"))
    else:
        out.append(Finding("reconciliation", "ok", f"curated plays match the manifest for {len(expected)} users"))
    return out


def _index(lake: Lake, repair: bool) -> Finding:
    from tunelake.curate import resolve

    if lake.exists(zones.NAME_INDEX) or not lake.glob(f"{zones.CURATED}/*/user_key=*/data.parquet"):
        return Finding("name index", "ok", "present" if lake.exists(zones.NAME_INDEX) else "nothing to index yet")
    if not repair:
        return Finding("name index", "problem", "missing (the next import rebuilds it)")
    with lake.transaction("doctor: name index"):
        n = resolve.rebuild_index(lake)
    return Finding("name index", "repaired", f"rebuilt from the curated zone ({n:,} names)")


def _modes(ws: Workspace, lake: Lake, repair: bool) -> Finding:
    """Secrets 0700/0600; raw and quarantine files (what listeners sent, personal fields included) 0600."""
    wrong: list[Path] = []
    if ws.secrets_dir.exists():
        for p in [ws.secrets_dir, *ws.secrets_dir.rglob("*")]:
            want = 0o700 if p.is_dir() else 0o600
            if stat.S_IMODE(p.stat().st_mode) & 0o077:
                wrong.append(p)
                if repair:
                    os.chmod(p, want)
    if lake.is_local:
        for zone in (zones.RAW, zones.QUARANTINE):
            root = Path(lake.path(zone))
            for p in root.rglob("*") if root.exists() else []:
                if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077:
                    wrong.append(p)
                    if repair:
                        os.chmod(p, 0o600)
    if not wrong:
        return Finding("file modes", "ok", "secrets, raw and quarantine files are private to their owner")
    if repair:
        private_dir(ws.secrets_dir)
    return Finding("file modes", "repaired" if repair else "problem",
                   f"{len(wrong)} files or folders readable by others" + (": made private" if repair else ""))
