"""The collector's log: one JSON object per line (`<workspace>/logs/collect.jsonl`), rotated at 10 MB with 5 old
files kept (the standard library's RotatingFileHandler), mode 0600. Events carry handles, counts and one-line
errors; never a token, a header or a response body."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """Opens the log 0600 (rotated files are renamed from it, so they keep the mode)."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding)


class EventLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = _PrivateRotatingFile(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def write(self, event: str, **fields: Any) -> None:
        doc = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        record = logging.LogRecord("tunelake.collect", logging.INFO, "", 0, json.dumps(doc, default=str), None, None)
        with self._lock:
            self.counts[event] = self.counts.get(event, 0) + 1
            self._handler.emit(record)
            self._handler.flush()

    def close(self) -> None:
        self._handler.close()
