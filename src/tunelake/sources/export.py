"""Spotify privacy exports: finding the files (file, folder or zip), telling their kind, parsing them.

Parsing is column-wise: the JSON is decoded once with orjson and every field becomes an Arrow array in one pass;
only when a column holds a value of the wrong type do we look at its records one by one, so that a bad record is
quarantined with a reason while the valid records around it are kept.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tunelake.errors import InputError
from tunelake.sources.types import TS

# --- finding files --------------------------------------------------------------------------------------------

MAX_ZIP_TOTAL = 8 * 1024**3  # uncompressed bytes a zip may expand to
MAX_ZIP_RATIO = 200  # uncompressed / compressed, per entry (zip bombs are far above; JSON is ~5–15)
MAX_ZIP_ENTRIES = 10_000

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
    """Tell a renamed listening file by the keys of its first record."""
    text = head[:4096].decode("utf-8", "ignore")
    if not text.lstrip().startswith("["):
        return None
    if '"ts"' in text and '"ms_played"' in text:
        return "extended_audio" if '"audiobook_uri"' in text else "extended_legacy"
    if '"endTime"' in text and '"msPlayed"' in text:
        if '"podcastName"' in text:
            return "account_podcast"
        if '"audiobookName"' in text:
            return "account_audiobook"
        return "account_music"
    return None


def _check_zip_member(zf_name: str, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in PurePosixPath(name).parts:
        raise InputError(f"refusing zip entry with an unsafe path {name!r}", file=zf_name,
                         hint="the archive may be hostile; unpack it yourself if you trust it")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InputError(f"refusing zip entry {name!r}: it is a symbolic link", file=zf_name)
    if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_ZIP_RATIO and info.file_size > 1 << 20:
        raise InputError(
            f"refusing zip entry {name!r}: compression ratio {info.file_size / info.compress_size:.0f}:1 "
            f"is beyond {MAX_ZIP_RATIO}:1 (zip bomb?)", file=zf_name)


def _zip_files(path: Path) -> Iterator[ExportFile]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InputError(f"not a valid zip archive ({exc})", file=str(path)) from None
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise InputError(f"refusing zip with {len(infos)} entries (limit {MAX_ZIP_ENTRIES})", file=str(path))
    total = 0
    for info in infos:
        _check_zip_member(str(path), info)
        total += info.file_size
    if total > MAX_ZIP_TOTAL:
        raise InputError(f"refusing zip that expands to {total / 1024**3:.1f} GiB (limit "
                         f"{MAX_ZIP_TOTAL / 1024**3:.0f} GiB)", file=str(path))
    for info in infos:
        if info.is_dir() or not info.filename.lower().endswith(".json"):
            continue
        base = PurePosixPath(info.filename).name
        if base.startswith("._"):  # macOS resource forks inside zips
            continue
        kind = kind_from_name(base)
        if kind is None:
            with zf.open(info) as fh:
                kind = sniff_kind(fh.read(4096))
        if kind is None:
            continue

        def reader(info: zipfile.ZipInfo = info) -> bytes:
            with zf.open(info) as fh:
                data = fh.read(info.file_size + 1)
            if len(data) > info.file_size:
                raise InputError("zip entry is larger than its header says", file=f"{path}!{info.filename}")
            return data

        yield ExportFile(base, f"{path}!{info.filename}", kind, info.file_size, reader)


def _disk_file(path: Path, explicit: bool) -> ExportFile | None:
    kind = kind_from_name(path.name)
    if kind is None and path.suffix.lower() == ".json":
        with open(path, "rb") as fh:
            kind = sniff_kind(fh.read(4096))
    if kind is None:
        if explicit and path.suffix.lower() == ".json":
            raise InputError("not a Spotify listening file this version can read (unknown layout)", file=str(path),
                             hint="expected Streaming_History_*, endsong_*, StreamingHistory*, YourLibrary or "
                                  "Playlist files")
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
                raise InputError("not a Spotify export file (expected .json or .zip)", file=str(path))
            found.append(f)
    return found


# --- parsing extended streaming history ----------------------------------------------------------------------

EXTENDED_FIELDS: dict[str, str] = {
    # field → expected JSON type: str | int | bool
    "ts": "str",
    "username": "str",
    "platform": "str",
    "ms_played": "int",
    "conn_country": "str",
    "ip_addr": "str",
    "ip_addr_decrypted": "str",
    "user_agent_decrypted": "str",
    "master_metadata_track_name": "str",
    "master_metadata_album_artist_name": "str",
    "master_metadata_album_album_name": "str",
    "spotify_track_uri": "str",
    "episode_name": "str",
    "episode_show_name": "str",
    "spotify_episode_uri": "str",
    "audiobook_title": "str",
    "audiobook_uri": "str",
    "audiobook_chapter_uri": "str",
    "audiobook_chapter_title": "str",
    "reason_start": "str",
    "reason_end": "str",
    "shuffle": "bool",
    "skipped": "bool",
    "offline": "bool",
    "offline_timestamp": "int",
    "incognito_mode": "bool",
}
REQUIRED = ("ts", "ms_played")
MIN_TS = datetime(2006, 1, 1)  # Spotify was founded in 2006; anything earlier is a broken clock


@dataclass
class Parsed:
    """Normalised rows of one file plus what was rejected and why."""

    rows: pa.Table
    read: int
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    unknown_fields: set[str] = field(default_factory=set)
    file_format: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.quarantine:
            counts[q["reason"]] = counts.get(q["reason"], 0) + 1
        return counts


def load_json_array(data: bytes, name: str) -> list[Any]:
    """Decode a file that must hold a JSON array; a file that is not gives one clear error."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        kind = "truncated JSON" if exc.pos >= len(data.rstrip()) - 1 else "not valid JSON"
        raise InputError(f"{kind} (at byte {exc.pos}: {exc.msg})", file=name) from None
    if not isinstance(doc, list):
        raise InputError(f"expected a JSON array of playback records, found a JSON {type(doc).__name__}", file=name)
    return doc


_TYPE_CHECK = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}
_ARROW = {"str": pa.string(), "int": pa.int64(), "bool": pa.bool_()}


def _column(records: list[dict], name: str, typ: str, bad: dict[int, tuple[str, str]]) -> pa.Array:
    """One field as an Arrow array; values of the wrong type mark their record bad (kept out of the array)."""
    values = [r.get(name) for r in records]
    try:
        if typ == "int" or typ == "bool":
            # pa.array would quietly turn True into 1 or 1 into True; check the types exactly first.
            check = _TYPE_CHECK[typ]
            if not all(v is None or check(v) for v in values):
                raise pa.ArrowInvalid("mixed types")
        return pa.array(values, _ARROW[typ])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        check = _TYPE_CHECK[typ]
        clean = []
        for i, v in enumerate(values):
            if v is None or check(v):
                clean.append(v)
            elif typ == "bool" and name == "skipped" and v in (0, 1) and not isinstance(v, bool):
                clean.append(bool(v))  # some export years write skipped as 0/1
            else:
                bad.setdefault(i, ("wrong_type", f"field '{name}' should be {typ}, got {type(v).__name__}"))
                clean.append(None)
        return pa.array(clean, _ARROW[typ])


def _uri_ids(uris: pa.Array, prefix: str, bad: dict[int, tuple[str, str]], field_name: str) -> pa.Array:
    """'spotify:track:ID' → 'ID'; a URI of another shape is a bad record."""
    valid = pc.fill_null(pc.starts_with(uris, prefix), True)
    if not pc.all(valid).as_py():
        for i, ok in enumerate(valid.to_pylist()):
            if not ok:
                bad.setdefault(i, ("bad_uri", f"field '{field_name}' is not a {prefix}… URI"))
    ids = pc.utf8_slice_codeunits(uris, len(prefix))
    return pc.if_else(pc.and_(valid, pc.greater(pc.utf8_length(ids), 0)), ids, pa.scalar(None, pa.string()))


def read_records(
    data: bytes, name: str, fields: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[Any], dict[int, tuple[str, str]], set[str]]:
    """A history file's JSON array as (records, original, bad, unknown fields), shared by every history layout.

    A record that is not an object is marked bad and read as `{}`, so that one stray value neither stops the file
    nor shifts the columns out of line with the record numbers; `original` keeps it as written, for quarantine.
    """
    records = load_json_array(data, name)
    bad: dict[int, tuple[str, str]] = {}
    for i, r in enumerate(records):
        if type(r) is not dict:
            bad[i] = ("not_an_object", f"record is a JSON {type(r).__name__}, not an object")
    original = records
    if bad:
        records = [r if type(r) is dict else {} for r in records]
    unknown: set[str] = set()
    expected = set(fields)
    for r in records:
        if not r.keys() <= expected:
            unknown |= r.keys() - expected
    return records, original, bad, unknown


def drop_bad_records(
    rows: pa.Table, original: list[Any], bad: dict[int, tuple[str, str]]
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """(good rows, quarantine items): a bad record leaves the rows but is kept, as written, with its reason, so
    that read = accepted + duplicates + quarantined still holds for the file."""
    quarantine = []
    if bad:
        rows = rows.filter(pa.array([i not in bad for i in range(len(original))]))
        for i in sorted(bad):
            reason, message = bad[i]
            quarantine.append({"record_no": i, "reason": reason, "message": message, "record": original[i]})
    return rows, quarantine


def parse_extended(data: bytes, name: str, *, now: datetime | None = None, fast: bool = True,
                   user_key: int | None = None) -> Parsed:
    """Extended streaming history (Streaming_History_Audio/Video_*, endsong_*) → normalised play rows (with their
    playback ids when the fast path reads them and `user_key` is given)."""
    from tunelake.sources.extended_fast import parse_extended_fast

    try:
        parsed = parse_extended_fast(data, name, EXTENDED_FIELDS, now=now, user_key=user_key) if fast else None
    except (UnicodeError, ValueError, OverflowError):
        parsed = None  # the fast path is an optimisation: whatever it cannot decode, the exact path below decides
    if parsed is not None:
        return parsed
    records, original, bad, unknown = read_records(data, name, EXTENDED_FIELDS)
    n = len(records)
    legacy = any("ip_addr_decrypted" in r or "username" in r for r in records[:50])
    media = "video" if "Streaming_History_Video" in name else "audio"

    cols = {f: _column(records, f, t, bad) for f, t in EXTENDED_FIELDS.items()}

    for req in REQUIRED:
        missing = pc.is_null(cols[req])
        if pc.any(missing).as_py():
            for i, m in enumerate(missing.to_pylist()):
                if m and i not in bad:
                    present = req in records[i]
                    bad[i] = ("wrong_type" if present else "missing_field",
                              f"field '{req}' is null" if present else f"field '{req}' is missing")

    ts_raw = cols["ts"]
    ended_at = pc.strptime(ts_raw, format="%Y-%m-%dT%H:%M:%SZ", unit="ms", error_is_null=True)
    bad_ts = pc.and_(pc.is_null(ended_at), pc.is_valid(ts_raw))
    if pc.any(bad_ts).as_py():
        # Tolerate fractional seconds or offsets that some tools write back; only then give up.
        for i, b in enumerate(bad_ts.to_pylist()):
            if b and i not in bad:
                bad[i] = ("bad_timestamp", f"field 'ts' is not an ISO-8601 UTC time: {records[i].get('ts')!r}")
    now = now or datetime.utcnow()
    ended_at = ended_at.cast(TS)
    out_of_range = pc.or_(pc.less(ended_at, pa.scalar(MIN_TS, TS)), pc.greater(ended_at, pa.scalar(now, TS)))
    if pc.any(out_of_range).as_py():
        for i, b in enumerate(out_of_range.to_pylist()):
            if b and i not in bad:
                bad[i] = ("ts_out_of_range", f"field 'ts' {records[i].get('ts')} is before 2006 or in the future")
    neg = pc.less(cols["ms_played"], 0)
    if pc.any(neg).as_py():
        for i, b in enumerate(neg.to_pylist()):
            if b and i not in bad:
                bad[i] = ("negative_ms_played", f"field 'ms_played' is negative ({records[i].get('ms_played')})")

    track_id = _uri_ids(cols["spotify_track_uri"], "spotify:track:", bad, "spotify_track_uri")
    episode_id = _uri_ids(cols["spotify_episode_uri"], "spotify:episode:", bad, "spotify_episode_uri")
    chapter_id = _uri_ids(cols["audiobook_chapter_uri"], "spotify:", bad, "audiobook_chapter_uri")
    audiobook_id = _uri_ids(cols["audiobook_uri"], "spotify:", bad, "audiobook_uri")

    # offline_timestamp: milliseconds in older exports, seconds in newer ones; 0 means "none".
    off = cols["offline_timestamp"]
    off_valid = pc.and_(pc.is_valid(off), pc.greater(off, 0))
    off_ms = pc.if_else(pc.greater(off, 100_000_000_000), off, pc.multiply(off, 1000))
    offline_at = pc.if_else(off_valid, off_ms, pa.scalar(None, pa.int64())).cast(pa.timestamp("ms"))

    content = pc.case_when(
        pc.make_struct(pc.is_valid(track_id), pc.is_valid(episode_id),
                       pc.or_(pc.is_valid(chapter_id), pc.is_valid(audiobook_id))),
        pa.scalar("track"), pa.scalar("episode"), pa.scalar("audiobook"), pa.scalar("unknown"),
    )

    ip = cols["ip_addr"] if not legacy else pc.coalesce(cols["ip_addr_decrypted"], cols["ip_addr"])
    rows = pa.table(
        {
            "ended_at": ended_at,
            "ts_precision": pa.repeat("s", n) if n else pa.array([], pa.string()),
            "ms_played": cols["ms_played"],
            "content_type": content,
            "media_type": pa.array([media] * n, pa.string()),
            "track_id": track_id,
            "track_name": cols["master_metadata_track_name"],
            "artist_name": cols["master_metadata_album_artist_name"],
            "album_name": cols["master_metadata_album_album_name"],
            "episode_id": episode_id,
            "episode_name": cols["episode_name"],
            "show_name": cols["episode_show_name"],
            "audiobook_id": audiobook_id,
            "audiobook_title": cols["audiobook_title"],
            "chapter_id": chapter_id,
            "chapter_title": cols["audiobook_chapter_title"],
            "reason_start": cols["reason_start"],
            "reason_end": cols["reason_end"],
            "shuffle": cols["shuffle"],
            "skipped": cols["skipped"],
            "offline": cols["offline"],
            "offline_at": offline_at,
            "incognito": cols["incognito_mode"],
            "platform": cols["platform"],
            "conn_country": cols["conn_country"],
            "ip_addr": ip,
            "user_agent": cols["user_agent_decrypted"],
            "username": cols["username"],
            "source": pa.array(["extended"] * n, pa.string()),
            "record_no": pa.array(range(n), pa.int32()),
        }
    )
    rows, quarantine = drop_bad_records(rows, original, bad)
    return Parsed(rows, n, quarantine, unknown, "endsong" if legacy else "extended")


PARSERS: dict[str, Callable[..., Parsed]] = {
    "extended_audio": parse_extended,
    "extended_video": parse_extended,
    "extended_legacy": parse_extended,
}


def source_of_kind(kind: str) -> str:
    """Lake source folder for a file kind."""
    return kind.split("_", 1)[0]
