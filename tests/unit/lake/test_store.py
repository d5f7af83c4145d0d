from __future__ import annotations

import os

import pyarrow as pa
import pytest

from tunelake.errors import ConfigError
from tunelake.lake import manifest
from tunelake.lake.store import Lake
from tunelake.workspace import open_workspace


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.write_bytes("a/b/c.json", b"[1]")
    lake.write_parquet("t/data.parquet", pa.table({"x": [1, 2, 3]}))
    assert lake.read_bytes("a/b/c.json") == b"[1]"
    assert lake.read_parquet("t/data.parquet")["x"].to_pylist() == [1, 2, 3]
    names = [n for _, _, files in os.walk(tmp_path) for n in files]
    assert sorted(names) == ["c.json", "data.parquet"]
    assert lake.glob("a/**/*.json") == ["a/b/c.json"]


def test_user_keys_are_stable_and_distinct():
    assert manifest.user_key_for("alice") == manifest.user_key_for("alice")
    assert manifest.user_key_for("alice") != manifest.user_key_for("bob")
    assert 0 < manifest.user_key_for("alice") < 2**63


def test_config_precedence(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "tunelake.toml").write_text('session_gap_minutes = 45\nstream_threshold_ms = 20000\n')
    monkeypatch.setenv("TUNELAKE_STREAM_THRESHOLD_MS", "25000")
    cfg = open_workspace(ws, {"session_gap_minutes": None})
    assert cfg.settings.session_gap_minutes == 45  # file
    assert cfg.settings.stream_threshold_ms == 25000  # env beats file
    cfg = open_workspace(ws, {"stream_threshold_ms": 31000})
    assert cfg.settings.stream_threshold_ms == 31000  # flag beats env
    (ws / "tunelake.toml").write_text('nonsense = 1\n')
    with pytest.raises(ConfigError, match="unknown setting 'nonsense'"):
        open_workspace(ws)
    monkeypatch.setenv("TUNELAKE_ENGINE", "oracle")
    (ws / "tunelake.toml").write_text("")
    with pytest.raises(ConfigError, match="must be one of duckdb, spark"):
        open_workspace(ws)
