"""One lake root on any fsspec filesystem, with atomic writes.

A local folder is the default; `az://` or `abfs://` (Azure Blob / ADLS Gen2 through adlfs) change only the URL.
Writes go to a temporary name first and are renamed into place, so a killed run never leaves half a file under a
real name; the manifest entry is written last and is what makes a batch exist.
"""

from __future__ import annotations

import io
import os
import posixpath
import uuid
from collections.abc import Iterable
from typing import Any

import fsspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tunelake.errors import ConfigError, SourceError

AZURE_SCHEMES = ("az", "abfs", "abfss")


def _azure_storage_options() -> dict[str, Any]:
    """Credentials for adlfs from the environment, in the order Azure users expect."""
    env = os.environ
    if env.get("AZURE_STORAGE_CONNECTION_STRING"):
        return {"connection_string": env["AZURE_STORAGE_CONNECTION_STRING"]}
    opts: dict[str, Any] = {}
    if env.get("AZURE_STORAGE_ACCOUNT_NAME"):
        opts["account_name"] = env["AZURE_STORAGE_ACCOUNT_NAME"]
    if env.get("AZURE_STORAGE_ACCOUNT_KEY"):
        opts["account_key"] = env["AZURE_STORAGE_ACCOUNT_KEY"]
    elif env.get("AZURE_STORAGE_SAS_TOKEN"):
        opts["sas_token"] = env["AZURE_STORAGE_SAS_TOKEN"]
    elif opts:
        opts["anon"] = False  # adlfs falls back to DefaultAzureCredential
    return opts


class Lake:
    """A lake root URL and the filesystem behind it; paths given to methods are relative to the root."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        scheme = url.split("://", 1)[0] if "://" in url else "file"
        self.scheme = scheme
        options = dict(storage_options or {})
        if scheme in AZURE_SCHEMES and not options:
            options = _azure_storage_options()
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise ConfigError(
                f"lake URL {url!r} needs an extra package: {exc}",
                hint="pip install 'tunelake[azure]' for az:// and abfs:// lakes",
            ) from None
        self.is_local = scheme in ("file", "local")
        if self.is_local:
            self.root = os.path.abspath(self.root)
            os.makedirs(self.root, exist_ok=True)

    # --- paths ------------------------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        """Filesystem path (as the fsspec filesystem wants it) of a lake-relative path."""
        return posixpath.join(self.root, rel) if rel else self.root

    def uri(self, rel: str) -> str:
        """Full URL of a lake-relative path (what DuckDB and Spark are given)."""
        if self.is_local:
            return self.path(rel)
        return f"{self.scheme}://{self.path(rel)}"

    # --- reads ------------------------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            raise
        except Exception as exc:  # pragma: no cover - network filesystems
            raise SourceError(f"cannot read {self.uri(rel)}: {exc}") from exc

    def read_json(self, rel: str) -> Any:
        return orjson.loads(self.read_bytes(rel))

    def listdir(self, rel: str) -> list[str]:
        """Names (not paths) directly under rel; empty when rel does not exist."""
        try:
            entries = self.fs.ls(self.path(rel), detail=False)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(e.rstrip("/")) for e in entries)

    def glob(self, pattern: str) -> list[str]:
        """Lake-relative paths matching a glob."""
        root = self.root.rstrip("/") + "/"
        return sorted(p[len(root):] if p.startswith(root) else p for p in self.fs.glob(self.path(pattern)))

    def read_parquet(self, rel: str | Iterable[str]) -> pa.Table:
        paths = [rel] if isinstance(rel, str) else list(rel)
        tables = [pq.read_table(self.path(p), filesystem=self.fs) for p in paths]
        return pa.concat_tables(tables, promote_options="default") if len(tables) != 1 else tables[0]

    # --- writes -----------------------------------------------------------------------------------------------
    def _tmp(self, rel: str) -> str:
        head, tail = posixpath.split(rel)
        return posixpath.join(head, f".{tail}.tmp-{uuid.uuid4().hex[:12]}")

    def _commit(self, tmp: str, rel: str) -> None:
        if self.is_local:
            os.replace(self.path(tmp), self.path(rel))  # atomic on POSIX
        else:
            self.fs.mv(self.path(tmp), self.path(rel))

    def _ensure_parent(self, rel: str) -> None:
        if self.is_local:
            os.makedirs(posixpath.dirname(self.path(rel)), exist_ok=True)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a file atomically: under a temporary name first, renamed into place."""
        self._ensure_parent(rel)
        tmp = self._tmp(rel)
        with self.fs.open(self.path(tmp), "wb") as fh:
            fh.write(data)
        self._commit(tmp, rel)

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))

    def write_parquet(self, rel: str, table: pa.Table, compression: str = "zstd", **options: Any) -> None:
        """`options` go to `pyarrow.parquet.write_table` (encodings, statistics)."""
        self._ensure_parent(rel)
        tmp = self._tmp(rel)
        if self.is_local:
            pq.write_table(table, self.path(tmp), compression=compression, **options)
        else:
            buf = io.BytesIO()
            pq.write_table(table, buf, compression=compression, **options)
            with self.fs.open(self.path(tmp), "wb") as fh:
                fh.write(buf.getvalue())
        self._commit(tmp, rel)

    def delete(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.rm(self.path(rel), recursive=True)
