"""Uploads of `tunelake serve` without a browser: the size limit while streaming, private files, the background
import and build (a real export from ../shared/data/real), re-uploads recognised, and no import for an account
deleted meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize("limit_mb", [1])
def test_uploads_past_the_limit_are_cut_off(tmp_path: Path, limit_mb: int) -> None:
    import io

    from tunelake.errors import InputError
    from tunelake.serve.upload import Uploads
    from tunelake.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws", {"serve_upload_max_mb": limit_mb})
    body = io.BytesIO(b"[" + b" " * (limit_mb << 20) + b"]")
    with pytest.raises(InputError, match="larger than the limit of 1 MB"):
        Uploads(ws).receive("ben", "Streaming_History_Audio_2024.json", body, None)  # no Content-Length: streamed
    with pytest.raises(InputError, match="larger than the limit"):
        Uploads(ws).receive("ben", "Streaming_History_Audio_2024.json", io.BytesIO(b"[]"), 5 << 20)
    assert not any((tmp_path / "ws" / "uploads").rglob("*.json"))


def test_an_upload_is_kept_private_until_imported(tmp_path: Path) -> None:
    import io

    from tunelake.serve.upload import stream_to_disk

    dest = tmp_path / "ws" / "uploads" / "job1" / "Streaming_History_Audio_2024.json"
    assert stream_to_disk(io.BytesIO(b"[]" * 700_000), dest, 2 << 20) == 1_400_000
    assert dest.stat().st_mode & 0o777 == 0o600
    assert dest.parent.stat().st_mode & 0o777 == 0o700 and dest.parent.parent.stat().st_mode & 0o777 == 0o700


def _wait(job: Any, timeout_s: float = 180.0) -> Any:
    import time

    deadline = time.monotonic() + timeout_s
    while job.state not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
    return job


def test_an_upload_is_imported_and_built_in_the_background(tmp_path: Path, real_dir: Path, requires: Any) -> None:
    requires("argon2")
    import json as _json

    import duckdb

    from tunelake.lake.manifest import list_batches, user_key_for
    from tunelake.serve.accounts import add_account
    from tunelake.serve.upload import Uploads
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    src = real_dir / "Efrrowini__spotify-music-analysis" / "Streaming_History_Audio_2022.json"
    rows = _json.loads(src.read_text())
    ws = open_workspace(tmp_path / "ws")
    uploads = Uploads(ws)
    # no account (deleted meanwhile): nothing is imported
    gone = _wait(uploads.receive("ghost", src.name, src.open("rb"), src.stat().st_size))
    assert gone.state == "failed" and "account was deleted" in gone.error
    assert list_batches(ws.lake) == []
    add_account(ws, "ben", "listener", "ten chars ok")
    job = _wait(uploads.receive("ben", src.name, src.open("rb"), src.stat().st_size))
    assert job.state == "done", job.error
    s = job.summary
    assert s["read"] == len(rows)
    assert s["read"] == s["accepted"] + s["duplicates"] + sum(s["quarantined"].values())
    con = duckdb.connect(str(current_warehouse_file(ws)), read_only=True)
    n = con.execute(f"SELECT count(*) FROM fact_play WHERE user_key = {user_key_for('ben')}").fetchall()[0][0]
    con.close()
    assert 0 < n <= s["accepted"]
    assert uploads.get("someone-else", job.id) is None and uploads.get("ben", job.id) is job
    assert not any((ws.root / "uploads").rglob("*.json"))  # the copy is gone; the raw zone keeps the bytes
    again = _wait(uploads.receive("ben", src.name, src.open("rb"), src.stat().st_size))
    assert again.state == "done" and again.summary["accepted"] == 0 and again.summary["already_imported"] == 1
