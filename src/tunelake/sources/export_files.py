"""Finding the listening files in what the user gives: single files, folders and the zip Spotify sends.

A zip is read in place, entry by entry, and refused before anything is read when it could not be a Spotify export:
unsafe paths, links, far more entries or listening files than any export holds, or more bytes or a higher
compression ratio (per entry and over the whole archive) than JSON ever gives.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tunelake.errors import InputError
from tunelake.sources.scrobbles import SCROBBLE_SUFFIXES, sniff_scrobble_kind

# Limits a zip must keep to be read at all. A real export holds a few dozen files (one extended-history file per year
# or ~10k plays, a handful of account-data files) that expand to at most a few GB, and JSON compresses 5-15:1.
MAX_ZIP_TOTAL = 8 * 1024**3  # bytes all entries together may expand to
MAX_ZIP_RATIO = 200  # expanded / compressed bytes, for an entry over MAX_ZIP_RATIO_FLOOR and for the whole archive
MAX_ZIP_RATIO_FLOOR = 1 << 20  # below this many expanded bytes a ratio cannot hurt (a tiny file compresses well)
MAX_ZIP_ENTRIES = 10_000  # entries of any kind, folders included
MAX_ZIP_LISTENING_FILES = 2_000  # entries that would be imported; each costs a batch in the lake

KIND_PATTERNS: list[tuple[str, str]] = [
    ("extended_audio", "Streaming_History_Audio_*.json"),
    ("extended_video", "Streaming_History_Video_*.json"),
    ("extended_legacy", "endsong*.json"),
    ("account_music", "StreamingHistory_music_*.json"),
    ("account_podcast", "StreamingHistory_podcast_*.json"),
    ("account_audiobook", "StreamingHistory_audiobook_*.json"),
    ("account_music", "StreamingHistory[0-9]*.json"),
    ("library", "YourLibrary.json"),
    ("playlist", "Playlist[0-9]*.json"),
]


@dataclass
class ExportFile:
    """One file found in the user's input, with a way to read its bytes (from disk or from inside a zip)."""

    name: str  # base name
    origin: str  # where it came from, for messages: path or zip!member
    kind: str
    size: int
    read: Callable[[], bytes]


def kind_from_name(name: str) -> str | None:
    base = PurePosixPath(name).name
    for kind, pattern in KIND_PATTERNS:
        if fnmatch.fnmatchcase(base, pattern):
            return kind
    return None


def sniff_kind(head: bytes) -> str | None:
    """Tell a renamed listening file by the keys of its first record; scrobble files (ListenBrainz, Last.fm,
    Maloja) by their content, whatever their name."""
    text = head[:4096].decode("utf-8", "ignore")
    if not text.lstrip().startswith("["):
        return sniff_scrobble_kind(head)
    if '"ts"' in text and '"ms_played"' in text:
        return "extended_audio" if '"audiobook_uri"' in text else "extended_legacy"
    if '"endTime"' in text and '"msPlayed"' in text:
        if '"podcastName"' in text:
            return "account_podcast"
        if '"audiobookName"' in text:
            return "account_audiobook"
        return "account_music"
    return sniff_scrobble_kind(head)


def _check_zip_member(zf_name: str, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in PurePosixPath(name).parts:
        raise InputError(f"refusing zip entry with an unsafe path {name!r}", file=zf_name,
                         hint="the archive may be hostile; unpack it yourself if you trust it")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InputError(f"refusing zip entry {name!r}: it is a symbolic link", file=zf_name)
    if info.file_size > MAX_ZIP_RATIO_FLOOR and info.file_size / max(info.compress_size, 1) > MAX_ZIP_RATIO:
        raise InputError(
            f"refusing zip entry {name!r}: compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1 "
            f"is beyond {MAX_ZIP_RATIO}:1 (zip bomb?)", file=zf_name)


def _check_zip_totals(zf_name: str, infos: list[zipfile.ZipInfo]) -> None:
    """Limits over every entry of the archive, from its directory alone (nothing is decompressed yet). The ratio is
    taken over all entries together because a bomb split into entries under the per-entry floor passes that check
    one entry at a time: 300 entries of 1,000 KB at 700:1 did."""
    if len(infos) > MAX_ZIP_ENTRIES:
        raise InputError(f"refusing zip with {len(infos)} entries (limit {MAX_ZIP_ENTRIES}; real Spotify exports "
                         "hold a few dozen)", file=zf_name)
    for info in infos:
        _check_zip_member(zf_name, info)
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > MAX_ZIP_TOTAL:
        raise InputError(f"refusing zip that expands to {total / 1024**3:.1f} GiB (limit "
                         f"{MAX_ZIP_TOTAL / 1024**3:.0f} GiB)", file=zf_name)
    if total > MAX_ZIP_RATIO_FLOOR and total / max(packed, 1) > MAX_ZIP_RATIO:
        raise InputError(f"refusing zip: compression ratio of all entries together {total / max(packed, 1):.0f}:1 "
                         f"is beyond {MAX_ZIP_RATIO}:1 (zip bomb?)", file=zf_name)


def _zip_files(path: Path) -> Iterator[ExportFile]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"not a valid zip archive ({exc})", file=str(path)) from None
    infos = zf.infolist()
    _check_zip_totals(str(path), infos)
    listening = 0
    for info in infos:
        if info.is_dir() or not info.filename.lower().endswith(SCROBBLE_SUFFIXES):
            continue
        base = PurePosixPath(info.filename).name
        if base.startswith("._"):  # macOS resource forks inside zips
            continue
        kind = kind_from_name(base)
        if kind is None:
            with zf.open(info) as fh:
                kind = sniff_kind(fh.read(8192))
        if kind is None:
            continue
        listening += 1
        if listening > MAX_ZIP_LISTENING_FILES:
            raise InputError(f"refusing zip with more than {MAX_ZIP_LISTENING_FILES} listening files (real Spotify "
                             "exports hold a few dozen; import the files in parts if this one is genuine)",
                             file=str(path))

        def reader(info: zipfile.ZipInfo = info) -> bytes:
            with zf.open(info) as fh:
                data = fh.read(info.file_size + 1)
            if len(data) > info.file_size:
                raise InputError("zip entry is larger than its header says", file=f"{path}!{info.filename}")
            return data

        yield ExportFile(base, f"{path}!{info.filename}", kind, info.file_size, reader)


def _disk_file(path: Path, explicit: bool) -> ExportFile | None:
    kind = kind_from_name(path.name)
    if kind is None and path.suffix.lower() in SCROBBLE_SUFFIXES:
        with open(path, "rb") as fh:
            kind = sniff_kind(fh.read(8192))
    if kind is None:
        if explicit and path.suffix.lower() in SCROBBLE_SUFFIXES:
            raise InputError("not a listening file this version can read (unknown layout)", file=str(path),
                             hint="expected Spotify's Streaming_History_*, endsong_*, StreamingHistory*, "
                                  "YourLibrary or Playlist files, or a ListenBrainz, Last.fm or Maloja export")
        return None
    return ExportFile(path.name, str(path), kind, path.stat().st_size, path.read_bytes)


def find_export_files(paths: list[str | Path]) -> list[ExportFile]:
    """Every listening file under the given files, folders and zips, in a stable order."""
    found: list[ExportFile] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError("no such file or folder", file=str(path))
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    p = Path(root) / name
                    if p.is_symlink():
                        continue
                    if name.lower().endswith(".zip"):
                        found.extend(_zip_files(p))
                    else:
                        f = _disk_file(p, explicit=False)
                        if f:
                            found.append(f)
        elif path.suffix.lower() == ".zip":
            found.extend(_zip_files(path))
        else:
            f = _disk_file(path, explicit=True)
            if f is None:
                raise InputError("not an export file (expected .json, .jsonl, .csv or .zip)", file=str(path))
            found.append(f)
    return found
