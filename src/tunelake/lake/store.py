"""One lake root on any fsspec filesystem, with atomic writes and transactions.

A local folder is the default; `az://` or `abfs://` (Azure Blob / ADLS Gen2 through adlfs) change only the URL.
Every write goes to a temporary name first and is renamed into place, so a killed run never leaves half a file
under a real name. Writes that belong together (a batch's raw file, curated rows, quarantine, manifest entry and
cursor) go through `Lake.transaction()`: they are staged under hidden names and become visible together when the
transaction commits (`lake.txn`). Inside a transaction, this object's reads see its own staged writes.
"""

from __future__ import annotations

import errno
import fnmatch
import io
import os
import posixpath
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import fsspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tunelake.errors import ConfigError, SourceError, TunelakeError

if TYPE_CHECKING:
    from tunelake.lake.txn import Transaction

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


class LakeWriteError(TunelakeError):
    """A write to the lake failed (full disk, permissions, network): names the path; nothing partial is kept."""

    exit_code = 4


def _write_error(uri: str, exc: OSError) -> LakeWriteError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    hint = ("free some space and run the same command again: nothing of this write was kept"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            else "fix the cause and run the same command again: nothing of this write was kept")
    return LakeWriteError(f"cannot write {uri}: {reason}", hint=hint)


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
        self._local = threading.local()

    # --- transactions -----------------------------------------------------------------------------------------
    @property
    def txn(self) -> Transaction | None:
        """The transaction this thread writes in, if any."""
        return getattr(self._local, "txn", None)

    @contextmanager
    def transaction(self, label: str = "") -> Iterator[Transaction]:
        """Writes in the block become visible together when it ends without error, and not at all otherwise.
        A transaction inside another joins it."""
        from tunelake.lake.txn import Transaction

        if self.txn is not None:
            yield self.txn
            return
        txn = Transaction(self, label)
        self._local.txn = txn
        try:
            yield txn
        except BaseException:
            self._local.txn = None
            txn.abort()
            raise
        self._local.txn = None
        txn.commit()

    def _phys(self, rel: str) -> str:
        """Where rel lives now for this thread: its staged copy inside a transaction, else rel itself."""
        txn = self.txn
        if txn is None:
            return rel
        if rel in txn.deleted:
            raise FileNotFoundError(self.uri(rel))
        return txn.staged.get(rel, rel)

    # --- paths ------------------------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        """Filesystem path (as the fsspec filesystem wants it) of a lake-relative path."""
        return posixpath.join(self.root, rel) if rel else self.root

    def uri(self, rel: str) -> str:
        """Full URL of a lake-relative path (what DuckDB and Spark are given)."""
        if self.is_local:
            return self.path(rel)
        return f"{self.scheme}://{self.path(rel)}"

    def read_uri(self, rel: str) -> str:
        """URL to read rel from now (its staged copy inside this thread's transaction)."""
        return self.uri(self._phys(rel))

    # --- reads ------------------------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        txn = self.txn
        if txn is not None:
            if rel in txn.deleted:
                return False
            if rel in txn.staged:
                return True
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(self._phys(rel)))
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
            entries = []
        names = {n for n in (posixpath.basename(e.rstrip("/")) for e in entries) if not n.startswith(".staged-")}
        txn = self.txn
        if txn is not None:
            prefix = rel.rstrip("/") + "/" if rel else ""
            for logical in txn.staged:
                if logical.startswith(prefix):
                    names.add(logical[len(prefix):].split("/", 1)[0])
            names -= {d[len(prefix):] for d in txn.deleted if d.startswith(prefix) and "/" not in d[len(prefix):]}
        return sorted(names)

    def glob(self, pattern: str) -> list[str]:
        """Lake-relative paths matching a glob."""
        root = self.root.rstrip("/") + "/"
        found = {p[len(root):] if p.startswith(root) else p for p in self.fs.glob(self.path(pattern))
                 if not posixpath.basename(p).startswith(".staged-")}
        txn = self.txn
        if txn is not None:
            found |= {r for r in txn.staged if fnmatch.fnmatchcase(r, pattern) or
                      ("**/" in pattern and fnmatch.fnmatchcase(r, pattern.replace("**/", "")))}
            found -= txn.deleted
        return sorted(found)

    def signatures(self, rel: str) -> dict[str, str]:
        """Lake-relative path → size and modification stamp of every file under rel (staged files left out): the
        string changes whenever a file is rewritten, which is how an incremental build finds what changed."""
        try:
            found = self.fs.find(self.path(rel), detail=True)
        except FileNotFoundError:
            return {}
        root = self.root.rstrip("/") + "/"
        out = {}
        for p, info in found.items():
            if posixpath.basename(p).startswith(".") or info.get("type") == "directory":
                continue
            stamp = next((info[k] for k in ("mtime", "last_modified", "LastModified", "etag", "ETag", "created")
                          if info.get(k) is not None), "")
            out[p[len(root):] if p.startswith(root) else p] = f"{info.get('size')}|{stamp}|{info.get('ino', '')}"
        return out

    def read_parquet(self, rel: str | Iterable[str], columns: list[str] | None = None) -> pa.Table:
        paths = [rel] if isinstance(rel, str) else list(rel)
        tables = [pq.read_table(self.path(self._phys(p)), columns=columns, filesystem=self.fs) for p in paths]
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

    def move(self, src: str, dst: str) -> None:
        """Rename src over dst (atomic on a local lake; copy-then-delete on object stores)."""
        self._ensure_parent(dst)
        self._commit(src, dst)

    def _ensure_parent(self, rel: str) -> None:
        if self.is_local:
            os.makedirs(posixpath.dirname(self.path(rel)), exist_ok=True)

    def _target(self, rel: str) -> str:
        """Where a write of rel goes: the transaction's staged name, or rel itself outside one."""
        txn = self.txn
        return rel if txn is None else txn.stage(rel)

    def _put(self, rel: str, write: Any, private: bool) -> None:
        target = self._target(rel)
        tmp = self._tmp(target)
        try:
            self._ensure_parent(target)
            write(tmp)
            if private and self.is_local:
                os.chmod(self.path(tmp), 0o600)
            self._commit(tmp, target)
        except OSError as exc:
            try:
                if self.fs.exists(self.path(tmp)):
                    self.fs.rm(self.path(tmp))
            except OSError:
                pass
            raise _write_error(self.uri(rel), exc) from exc

    def write_bytes(self, rel: str, data: bytes, *, private: bool = False) -> None:
        """Write a file atomically: under a temporary name first, renamed into place. `private`: mode 0600 on a
        local lake (raw and quarantine files hold what a listener sent us)."""
        def write(tmp: str) -> None:
            with self.fs.open(self.path(tmp), "wb") as fh:
                fh.write(data)

        self._put(rel, write, private)

    def write_json(self, rel: str, obj: Any, *, private: bool = False) -> None:
        self.write_bytes(rel, orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), private=private)

    def write_parquet(self, rel: str, table: pa.Table, compression: str = "zstd", **options: Any) -> None:
        """`options` go to `pyarrow.parquet.write_table` (encodings, statistics)."""
        def write(tmp: str) -> None:
            if self.is_local:
                pq.write_table(table, self.path(tmp), compression=compression, **options)
            else:
                buf = io.BytesIO()
                pq.write_table(table, buf, compression=compression, **options)
                with self.fs.open(self.path(tmp), "wb") as fh:
                    fh.write(buf.getvalue())

        self._put(rel, write, False)

    def delete(self, rel: str) -> None:
        """Delete a file or folder (at commit, inside a transaction)."""
        txn = self.txn
        if txn is not None:
            txn.delete(rel)
            return
        if self.fs.exists(self.path(rel)):
            self.fs.rm(self.path(rel), recursive=True)


def parquet_bytes(table: pa.Table, compression: str = "zstd", **options: Any) -> bytes:
    """A table encoded as a Parquet file in memory. The encoding releases the GIL, so a caller can run it on a thread
    beside other work and write the bytes itself (`Lake.write_bytes`): the lake itself is only touched there."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=compression, **options)
    return buf.getvalue()
