"""The raw and quarantine zones of an import: files kept exactly as received (zstd-compressed, with an envelope,
mode 0600), and rejected records kept with their reason, their place in the file, the hash of the original and
their personal fields treated as in the curated zone."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson
import pyarrow as pa

from tunelake.lake import zones
from tunelake.lake.store import Lake
from tunelake.sources.export import ExportFile

RECORD_PII_FIELDS = frozenset({"ip_addr", "ip_addr_decrypted", "username", "user_agent_decrypted", "user_agent",
                               "user_name"})  # user_name: a ListenBrainz listener's handle


def scrub_record(value: Any, policy: str, salt: bytes | None) -> Any:
    """A received record with its personal fields dropped (null) or pseudonymised, at any depth."""
    if isinstance(value, dict):
        return {k: (_scrub_value(v, policy, salt) if k in RECORD_PII_FIELDS else scrub_record(v, policy, salt))
                for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_record(v, policy, salt) for v in value]
    return value


def _scrub_value(v: Any, policy: str, salt: bytes | None) -> Any:
    if v is None:
        return None
    if policy == "pseudonymize" and salt is not None:
        from tunelake.curate.privacy import pseudonymize

        return pseudonymize(v if isinstance(v, str) else orjson.dumps(v).decode(), salt)
    return None


def record_hash(record: Any) -> str:
    """SHA-256 of a record's canonical JSON (sorted keys): finds the original among the raw file's records."""
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def write_quarantine(lake: Lake, source: str, handle: str, batch_id: str, origin: str, items: list[dict],
                      policy: str = "drop", salt: bytes | None = None) -> None:
    """One JSON line per rejected record: where it came from (file relative to the import, record number), why,
    the record with its personal fields treated as in the curated zone, and the hash of the original."""
    lines = []
    for q in items:
        item = {"file": origin, **q}
        if "record" in q:
            item["record_sha256"] = record_hash(q["record"])
            item["record"] = scrub_record(q["record"], policy, salt)
        lines.append(orjson.dumps(item, default=str) + b"\n")
    lake.write_bytes(zones.quarantine_path(source, handle, batch_id), b"".join(lines), private=True)


def display_origin(origin: str, roots: list[str]) -> str:
    """A file's name relative to the folder of the path it was imported from ("my_spotify_data.zip!…/x.json"):
    absolute paths say who ran the import, so nothing kept in the lake carries one."""
    disk = origin.split("!", 1)[0]
    for root in sorted(roots, key=len, reverse=True):
        r = os.path.normpath(str(root))
        if disk == r or disk.startswith(r.rstrip("/") + "/"):
            parent = os.path.dirname(r)
            return origin[len(parent) + 1:] if parent and origin.startswith(parent + "/") else origin.lstrip("/")
    return os.path.basename(disk) + origin[len(disk):]


def compress_raw(data: bytes, compression: str = "zstd") -> bytes:
    """The bytes as the raw zone stores them: zstd (level 1) by default — extended history shrinks 8–20×, and
    compressing costs less CPU than writing the plain bytes did (gzip cost more than parsing the file). Apart
    from `store_raw` so an import can compress one file in a thread while it stores another."""
    return pa.Codec("zstd", compression_level=1).compress(data, asbytes=True) if compression == "zstd" else data


def store_raw(lake: Lake, f: ExportFile, data: bytes, source: str, handle: str, batch_id: str,
              content_hash: str, when, compression: str = "zstd", origin: str | None = None,
              stored: bytes | None = None) -> str:
    """Keep the bytes exactly as received, with an envelope saying what they are (`stored`: the bytes already
    through `compress_raw`); `read_raw` gives the received bytes back."""
    suffix = next((s for s in (".jsonl", ".json", ".csv") if f.name.lower().endswith(s)), "")
    if stored is None:
        stored = compress_raw(data, compression)
    if compression == "zstd":
        suffix += ".zst"
    raw = zones.raw_path(source, handle, when, batch_id, suffix)
    lake.write_bytes(raw, stored, private=True)
    lake.write_json(zones.envelope_path(raw), {
        "source": source, "kind": f.kind, "file_name": f.name, "origin": origin or f.name, "user": handle,
        "imported_at": when.isoformat(), "sha256": content_hash, "bytes": len(data),
        "compression": compression, "stored_bytes": len(stored),
    }, private=True)
    return raw


def read_raw(lake: Lake, raw: str) -> bytes:
    """The bytes a raw-zone file was received as (a standard zstd frame when compressed: `zstd -d` reads it)."""
    envelope = lake.read_json(zones.envelope_path(raw))
    stored = lake.read_bytes(raw)
    if envelope.get("compression", "none") == "zstd":
        return pa.Codec("zstd").decompress(stored, decompressed_size=envelope["bytes"], asbytes=True)
    return stored
