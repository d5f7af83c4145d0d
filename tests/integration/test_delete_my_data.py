"""Deleting a listener's data leaves none of it in the bytes of any file of the workspace, the warehouse files
included: rows DELETEd from a DuckDB file stay in its blocks (a deleted handle was still found in the file), so the
warehouse is rebuilt from scratch without them rather than updated in place."""

from __future__ import annotations

from pathlib import Path

from tunelake.curate.ingest import import_paths
from tunelake.pipeline import build
from tunelake.pipeline.runlog import read_run_logs
from tunelake.serve.mydata import delete_my_data
from tunelake.synthetic.world import generate_world
from tunelake.workspace import open_workspace


def test_deleted_listener_is_in_no_byte_of_the_workspace(tmp_path: Path) -> None:
    world = tmp_path / "world"
    generate_world(world, users=4, days=20, seed=41, account_data=False)
    ws = open_workspace(tmp_path / "ws")
    handles = sorted(p.name for p in (world / "exports").iterdir())
    renamed = {h: f"zz-private-{i}-handle" for i, h in enumerate(handles)}  # names found nowhere by chance
    for h in handles:
        import_paths(ws, [str(world / "exports" / h)], renamed[h])
        build(ws)
    gone = renamed[handles[1]]
    holding = [p for p in ws.root.rglob("*") if p.is_file() and gone.encode() in p.read_bytes()]
    assert any(p.suffix == ".duckdb" for p in holding), holding  # the handle is there before, in clear

    delete_my_data(ws, gone)

    holding = [str(p.relative_to(ws.root)) for p in ws.root.rglob("*")
               if p.is_file() and gone.encode() in p.read_bytes()]
    assert holding == []
    last = next(s for s in read_run_logs(ws.lake)[-1]["steps"] if s["step"] == "build")["details"]
    assert last["mode"] == "full"
    kept = renamed[handles[2]]
    assert any(kept.encode() in p.read_bytes() for p in ws.warehouse_dir.glob("wh-*.duckdb"))
