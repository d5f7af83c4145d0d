"""`tunelake doctor` on workspaces left broken: by a crash of the version before the commit protocol (curated rows
written, batch entry not), by hand-made leftovers, and with loosened file modes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tunelake.curate.ingest import import_paths
from tunelake.lake import manifest
from tunelake.pipeline import build
from tunelake.pipeline.doctor import diagnose
from tunelake.synthetic.world import generate_world
from tunelake.workspace import open_workspace


def test_rows_of_a_batch_that_never_committed_are_removed_and_come_back_on_reimport(tmp_path):
    world = tmp_path / "world"
    generate_world(world, users=1, days=10, seed=2, account_data=False)
    export = world / "exports" / "listener-0001"
    cfg = open_workspace(tmp_path / "ws")
    first = import_paths(cfg, [str(export)], "l1")
    lake = cfg.lake
    plays = next(b for b in manifest.list_batches(lake) if b.source == "extended")
    # the state the old import left after a crash between the curated write and the batch commit
    os.remove(lake.path(f"_manifest/batches/{plays.batch_id}.json"))
    findings = {f.check: f for f in diagnose(cfg, repair=False)}
    assert findings["reconciliation"].status == "problem"
    assert findings["curated rows"].status == "problem" and f"{plays.accepted} rows" in findings["curated rows"].detail
    findings = {f.check: f for f in diagnose(cfg)}
    assert findings["curated rows"].status == "repaired"
    assert findings["reconciliation"].status == "ok", findings["reconciliation"].detail
    again = import_paths(cfg, [str(export)], "l1")
    extended = next(f for f in again.files if f.kind.startswith("extended"))
    assert extended.status == "imported" and extended.accepted == plays.accepted and extended.duplicates == 0
    assert again.total("accepted") == plays.accepted  # the other files were imported before
    assert first.total("accepted") == sum(f.accepted for f in first.files)
    info = build(cfg)
    assert all(g.passed for g in info.quality), [g.describe() for g in info.quality if not g.passed]


def test_leftovers_and_modes_are_repaired_and_reported(tmp_path):
    world = tmp_path / "world"
    generate_world(world, users=1, days=5, seed=2, account_data=False)
    cfg = open_workspace(tmp_path / "ws")
    import_paths(cfg, [str(world / "exports" / "listener-0001")], "l1")
    build(cfg)
    ws = Path(cfg.root)
    lake_root = Path(cfg.lake_url)
    (lake_root / "curated" / "plays" / ".staged-T9-data.parquet").write_bytes(b"half")
    (ws / "warehouse" / "wh-19990101T000000000000.duckdb").write_bytes(b"orphan")
    runs = lake_root / "_manifest" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "19990101T000000000000-abc.json").write_text(json.dumps(
        {"run_id": "19990101T000000000000-abc", "status": "running", "steps": [
            {"step": "build", "started_at": "1999-01-01T00:00:00", "ended_at": None, "status": "ok"}]}))
    raw = next((lake_root / "raw").rglob("*.zst"))
    os.chmod(raw, 0o644)
    os.chmod(ws / "secrets", 0o755)
    checked = {f.check: f.status for f in diagnose(cfg, repair=False)}
    assert checked == {**checked, "lake": "problem", "run log": "problem", "warehouse files": "problem",
                       "file modes": "problem"}
    assert (lake_root / "curated" / "plays" / ".staged-T9-data.parquet").exists()  # --check changed nothing
    repaired = {f.check: f.status for f in diagnose(cfg)}
    assert repaired == {**repaired, "lake": "repaired", "run log": "repaired", "warehouse files": "repaired",
                        "file modes": "repaired"}
    assert not (lake_root / "curated" / "plays" / ".staged-T9-data.parquet").exists()
    assert not (ws / "warehouse" / "wh-19990101T000000000000.duckdb").exists()
    assert json.loads((runs / "19990101T000000000000-abc.json").read_text())["status"] == "interrupted"
    assert oct(raw.stat().st_mode & 0o777) == "0o600" and oct((ws / "secrets").stat().st_mode & 0o777) == "0o700"
    assert all(f.status == "ok" for f in diagnose(cfg))
