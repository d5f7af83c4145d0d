"""Limits over a whole zip archive: the compression ratio and expanded size of all entries together, and how many
entries and listening files it may hold. Real exports (a few dozen files) pass them all."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson
import pytest

from tunelake.errors import InputError
from tunelake.sources.export import find_export_files

ACCOUNT = orjson.dumps([{"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": 1}])


def test_many_entries_just_under_the_per_entry_size_floor_are_refused_by_the_total_ratio(tmp_path):
    """Each entry is under 1 MiB, so the per-entry ratio check never looked at them; together they are a bomb."""
    z = tmp_path / "bomb.zip"
    body = b"[" + b" " * 999_998 + b"]"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"StreamingHistory{i}.json", body)
    infos = zipfile.ZipFile(z).infolist()
    assert all(i.file_size < 1 << 20 and i.file_size / i.compress_size > 200 for i in infos)
    with pytest.raises(InputError) as err:
        find_export_files([z])
    message = err.value.one_line()
    assert str(z) in message and "compression ratio" in message and "all entries together" in message


def test_more_listening_files_than_any_export_has_are_refused(tmp_path):
    from tunelake.sources.export_files import MAX_ZIP_LISTENING_FILES

    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(MAX_ZIP_LISTENING_FILES + 1):
            zf.writestr(f"d/StreamingHistory{i}.json", ACCOUNT)
    with pytest.raises(InputError) as err:
        find_export_files([z])
    assert err.value.one_line() == (
        f"{z}: refusing zip with more than {MAX_ZIP_LISTENING_FILES} listening files (real Spotify exports hold a "
        "few dozen; import the files in parts if this one is genuine)")


def test_more_entries_than_the_entry_limit_are_refused_before_anything_is_read(tmp_path):
    from tunelake.sources.export_files import MAX_ZIP_ENTRIES

    z = tmp_path / "entries.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for i in range(MAX_ZIP_ENTRIES + 1):
            zf.writestr(f"x/{i}.txt", b"")
    with pytest.raises(InputError, match=f"refusing zip with {MAX_ZIP_ENTRIES + 1} entries"):
        find_export_files([z])


def test_total_expanded_size_counts_every_entry(tmp_path, monkeypatch):
    from tunelake.sources import export_files

    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("StreamingHistory0.json", ACCOUNT)
        zf.writestr("Read_Me_First.pdf", b"%PDF" + b"x" * 5000)  # not read, but it is unpacked space all the same
    monkeypatch.setattr(export_files, "MAX_ZIP_TOTAL", 5000)  # the limit, not the check, is lowered for the test
    with pytest.raises(InputError, match="expands to"):
        find_export_files([z])


def test_real_exports_zipped_pass_every_limit(tmp_path, real_dir):
    z = tmp_path / "my_spotify_data.zip"
    names = []
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder in sorted(p for p in Path(real_dir).iterdir() if p.is_dir()):
            for f in sorted(folder.glob("*.json")):
                zf.write(f, f"{folder.name}/{f.name}")
                names.append(f.name)
    found = find_export_files([z])
    assert len(found) == len(names) > 15 and sorted(f.name for f in found) == sorted(names)
    assert all(f.read() == (Path(real_dir) / f.origin.split("!", 1)[1]).read_bytes() for f in found)
