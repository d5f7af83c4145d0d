"""Finding export files in zips and folders, and refusing hostile zips with a clear message."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import orjson
import pytest

from tunelake.errors import InputError
from tunelake.sources import export_files
from tunelake.sources.export import find_export_files

ACCOUNT = orjson.dumps([{"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": 1}])
EXTENDED = orjson.dumps([{"ts": "2023-10-02T23:43:10Z", "ms_played": 5, "spotify_track_uri": "spotify:track:abc",
                          "audiobook_uri": None}])


def _zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_nested_spotify_zip_is_read_by_name_and_content(tmp_path):
    z = _zip(tmp_path / "my_spotify_data.zip", {
        "Spotify Account Data/StreamingHistory_music_0.json": ACCOUNT,
        "Spotify Account Data/YourLibrary.json": b'{"tracks": []}',
        "Spotify Account Data/Read_Me_First.pdf": b"%PDF",
        "Spotify Extended Streaming History/Streaming_History_Audio_2023.json": EXTENDED,
        "Spotify Extended Streaming History/renamed.json": EXTENDED,
        "__MACOSX/._StreamingHistory_music_0.json": b"junk",
        "Spotify Account Data/Identity.json": b'{"displayName": "x"}',
    })
    files = find_export_files([z])
    kinds = sorted((f.name, f.kind) for f in files)
    assert kinds == sorted([("Streaming_History_Audio_2023.json", "extended_audio"),
                            ("StreamingHistory_music_0.json", "account_music"), ("YourLibrary.json", "library"),
                            ("renamed.json", "extended_audio")])
    assert all(f.origin.startswith(str(z) + "!") for f in files)
    assert next(f for f in files if f.kind == "account_music").read() == ACCOUNT


@pytest.mark.parametrize("name", ["/etc/StreamingHistory0.json", "../StreamingHistory0.json",
                                  "a/../../StreamingHistory0.json", "C:/StreamingHistory0.json"])
def test_unsafe_paths_are_refused(tmp_path, name):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), ACCOUNT)
    with pytest.raises(InputError, match="unsafe path"):
        find_export_files([z])


def test_symlink_entries_are_refused(tmp_path):
    z = tmp_path / "link.zip"
    info = zipfile.ZipInfo("StreamingHistory0.json")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        find_export_files([z])


def test_zip_bomb_by_ratio_is_refused(tmp_path):
    # 64 MiB of one repeated byte deflates to ~64 KiB: a ratio of ~1000:1, far beyond any JSON export.
    z = _zip(tmp_path / "bomb.zip", {"StreamingHistory0.json": b"[" + b" " * (64 << 20) + b"]"})
    assert z.stat().st_size < 1 << 20
    with pytest.raises(InputError, match="compression ratio"):
        find_export_files([z])


def test_total_size_limit(tmp_path, monkeypatch):
    z = _zip(tmp_path / "big.zip", {f"StreamingHistory{i}.json": ACCOUNT * 50 for i in range(4)}, zipfile.ZIP_STORED)
    monkeypatch.setattr(export_files, "MAX_ZIP_TOTAL", 1000)  # the limit, not the check, is lowered for the test
    with pytest.raises(InputError, match="expands to"):
        find_export_files([z])


def test_not_a_zip_and_missing_path(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(InputError, match="not a valid zip"):
        find_export_files([bad])
    with pytest.raises(InputError, match="no such file"):
        find_export_files([tmp_path / "missing"])


def test_folder_walk_skips_symlinks_and_unknown_json(tmp_path):
    d = tmp_path / "export"
    d.mkdir()
    (d / "StreamingHistory_music_0.json").write_bytes(ACCOUNT)
    (d / "Identity.json").write_bytes(b'{"x": 1}')
    (d / "StreamingHistory_music_1.json").symlink_to(d / "StreamingHistory_music_0.json")
    files = find_export_files([d])
    assert [f.name for f in files] == ["StreamingHistory_music_0.json"]
