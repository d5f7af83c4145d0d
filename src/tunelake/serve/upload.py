"""Uploads of Spotify exports through `tunelake serve`: streamed to disk, checked, imported in the background.

The request body is the file itself (the page sends it with `fetch`, the name in `X-Filename`), copied to
`<workspace>/uploads/<job>/` in 1 MB chunks and cut off past `serve_upload_max_mb`, so a large export never sits
in memory. The file then goes through exactly what `tunelake import` does — the same hostile-zip checks
(`sources.export_files`), the same `import_paths` under the workspace lock — followed by the one pipeline runner's
build, in a thread; the page polls the job for progress and shows the import summary. The uploaded copy is
removed once imported: the raw zone keeps the bytes received.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tunelake.errors import InputError, TunelakeError
from tunelake.settings import private_dir
from tunelake.workspace import Workspace

CHUNK = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,120}\.(zip|json)$", re.IGNORECASE)
log = logging.getLogger(__name__)


@dataclass
class UploadJob:
    """One upload as the page sees it (no path, no other listener's name)."""

    id: str
    handle: str
    name: str
    bytes: int = 0
    state: str = "receiving"  # receiving | importing | building | done | failed
    done: int = 0
    total: int = 0
    label: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "bytes": self.bytes, "state": self.state, "done": self.done,
                "total": self.total, "label": self.label, "summary": self.summary, "error": self.error}


def check_upload_name(name: Any) -> str:
    """The file name the browser sent, when it is a plain .zip or .json name (kept: the export's file names say
    what each file holds); InputError otherwise — a path, a traversal or another type is refused, not cleaned."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InputError(f"upload name {str(name)[:60]!r} is not a .zip or .json file name", field="X-Filename",
                         hint="upload the zip Spotify sent, or its Streaming_History*.json files")
    return name


def uploads_dir(ws: Workspace) -> Path:
    return ws.root / "uploads"


def stream_to_disk(src: IO[bytes], dest: Path, limit: int) -> int:
    """Copy `src` to `dest` chunk by chunk; InputError (and no file left) once more than `limit` bytes come."""
    n = 0
    private_dir(dest.parent.parent)  # uploads/: exports hold personal fields until the import drops them
    private_dir(dest.parent)
    try:
        with os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            while chunk := src.read(CHUNK):
                n += len(chunk)
                if n > limit:
                    raise InputError(f"upload is larger than the limit of {limit // (1 << 20)} MB",
                                     file=dest.name, hint="raise the serve_upload_max_mb setting, or upload the "
                                     "export's JSON files one by one")
                out.write(chunk)
    except BaseException:
        shutil.rmtree(dest.parent, ignore_errors=True)
        raise
    return n


class Uploads:
    """The jobs of one server process; a listener reaches only their own jobs."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._jobs: dict[str, UploadJob] = {}
        self._lock = threading.Lock()

    def receive(self, handle: str, name: Any, body: IO[bytes], length: int | None) -> UploadJob:
        """Stream one upload to disk, check it as `tunelake import` would, and start importing it."""
        from tunelake.sources.export_files import find_export_files

        name = check_upload_name(name)
        limit = int(self.ws.settings.serve_upload_max_mb) << 20
        if length is not None and length > limit:
            raise InputError(f"upload is larger than the limit of {limit >> 20} MB", file=name,
                             hint="raise the serve_upload_max_mb setting")
        job = UploadJob(secrets.token_hex(8), handle, name)
        path = uploads_dir(self.ws) / job.id / name
        job.bytes = stream_to_disk(body, path, limit)
        try:
            if not find_export_files([path]):  # the hostile-zip checks, before a thread is started
                raise InputError("no Spotify listening files in this upload", file=name,
                                 hint="expected Streaming_History_*, StreamingHistory*, YourLibrary or Playlist files")
        except BaseException:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise
        with self._lock:
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, path), name=f"tunelake-upload-{job.id}", daemon=True).start()
        return job

    def get(self, handle: str, job_id: Any) -> UploadJob | None:
        """The job when it is `handle`'s; None for anyone else's (the same answer as for no job at all)."""
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        return job if job is not None and job.handle == handle else None

    def forget(self, handle: str) -> None:
        with self._lock:
            self._jobs = {k: j for k, j in self._jobs.items() if j.handle != handle}

    def _run(self, job: UploadJob, path: Path) -> None:
        from tunelake.curate.ingest import import_paths
        from tunelake.pipeline.runner import build

        def progress(done: int, total: int, label: str = "") -> None:
            job.done, job.total, job.label = done, total, label

        from tunelake.serve.accounts import get_account

        try:
            job.state = "importing"
            with self.ws.writing(command="serve upload"):  # one lock with "delete my data": never after it
                if get_account(self.ws, job.handle) is None:
                    raise InputError("the account was deleted before its upload was imported", file=job.name)
                summary = import_paths(self.ws, [str(path)], job.handle, progress=progress)
            job.summary = _summary(summary)
            job.state, job.done, job.total, job.label = "building", 0, 0, "building the warehouse"
            build(self.ws, progress=progress)
            job.state, job.label = "done", ""
        except TunelakeError as exc:
            job.state, job.error = "failed", exc.one_line()
        except Exception as exc:  # shown on the page; the traceback goes to the server log only
            log.exception("upload %s failed", job.id)
            job.state, job.error = "failed", f"internal error: {type(exc).__name__}"
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)


def _summary(summary: Any) -> dict[str, Any]:
    """What the page shows: the import's totals, quarantine by reason, and the files' statuses."""
    d = summary.as_dict()
    return {k: d[k] for k in ("files", "read", "accepted", "duplicates", "merged", "quarantined",
                              "excluded_from_streams", "already_imported", "failed")}


__all__ = ["UploadJob", "Uploads", "check_upload_name", "stream_to_disk", "uploads_dir"]
