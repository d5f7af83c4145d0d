"""Lake transactions: files that belong together become visible together, or not at all.

A transaction stages each write under a hidden name beside its target (`.staged-<txn>-<name>`), which no reader
lists. Commit writes one document, `_manifest/txn/<txn>.json`, naming every staged file and every deletion —
that single atomic put is the commit point — then renames the staged files into place, applies the deletions and
removes the document. A crash before the document leaves only hidden files (rolled back by `recover`); a crash
after it leaves a document that `recover` finishes (roll forward): every step of applying it is idempotent.

`recover` runs under the workspace lock when the last holder died (see `lake.lock`); so the readers that matter
— dedupe, quality gates, the build, which all run under the lock — never see an uncommitted file, and readers
without the lock (status) skip hidden names.
"""

from __future__ import annotations

import posixpath
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

# `lake` below is a `tunelake.lake.store.Lake`; not imported, because the store imports this module (it stages its
# writes through a Transaction) and arrows between the two would run both ways.
Lake = Any

TXN_DIR = "_manifest/txn"
STAGED = ".staged-"


def new_txn_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"


def staged_name(rel: str, txn_id: str) -> str:
    head, tail = posixpath.split(rel)
    return posixpath.join(head, f"{STAGED}{txn_id}-{tail}")


class Transaction:
    """The staged writes and deletions of one `Lake.transaction()` block (one thread's)."""

    def __init__(self, lake: Lake, label: str = "") -> None:
        self.lake = lake
        self.label = label
        self.id = new_txn_id()
        self.staged: dict[str, str] = {}  # target → staged name
        self.deleted: set[str] = set()

    def stage(self, rel: str) -> str:
        self.deleted.discard(rel)
        name = self.staged.get(rel)
        if name is None:
            name = self.staged[rel] = staged_name(rel, self.id)
        return name

    def delete(self, rel: str) -> None:
        if rel in self.staged:
            self.lake.fs.rm(self.lake.path(self.staged.pop(rel)))
        self.deleted.add(rel)

    def commit(self) -> None:
        if not self.staged and not self.deleted:
            return
        doc = {"txn": self.id, "label": self.label, "committed_at": datetime.now(UTC).isoformat(),
               "moves": sorted([staged, target] for target, staged in self.staged.items()),
               "deletes": sorted(self.deleted)}
        try:
            self.lake.write_bytes(f"{TXN_DIR}/{self.id}.json", orjson.dumps(doc))  # the commit point
        except BaseException:
            self.abort()
            raise
        apply(self.lake, doc)

    def abort(self) -> None:
        """Remove what was staged; nothing of the transaction was visible."""
        for staged in self.staged.values():
            try:
                if self.lake.fs.exists(self.lake.path(staged)):
                    self.lake.fs.rm(self.lake.path(staged))
            except OSError:
                pass  # left for `recover`: a hidden name nobody reads
        self.staged.clear()
        self.deleted.clear()


def apply(lake: Lake, doc: dict[str, Any]) -> None:
    """Make a committed transaction's files visible. Idempotent: a move whose staged file is gone was done."""
    for staged, target in doc["moves"]:
        if lake.fs.exists(lake.path(staged)):
            lake.move(staged, target)
    for rel in doc["deletes"]:
        if lake.fs.exists(lake.path(rel)):
            lake.fs.rm(lake.path(rel), recursive=True)
    lake.fs.rm(lake.path(f"{TXN_DIR}/{doc['txn']}.json"))


@dataclass
class Recovery:
    """What `recover` did, for `tunelake doctor` and the log."""

    rolled_forward: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.rolled_forward or self.removed)


def finish_committed(lake: Lake) -> list[str]:
    """Apply every commit document still in the lake (its writer stopped, or failed, while applying it): one
    listing when there is none. Call only while holding the workspace lock. Returns the transaction ids."""
    done = []
    for name in lake.listdir(TXN_DIR):
        rel = f"{TXN_DIR}/{name}"
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            doc = orjson.loads(lake.read_bytes(rel))
        except FileNotFoundError:
            continue
        except orjson.JSONDecodeError:  # cannot be torn (atomic put); if it is anyway, it never committed
            lake.fs.rm(lake.path(rel))
            continue
        apply(lake, doc)
        done.append(doc["txn"])
    return done


def recover(lake: Lake) -> Recovery:
    """Finish committed transactions and remove every staged or temporary file of uncommitted ones. Call only
    while holding the workspace lock (no transaction of another writer may be in flight)."""
    out = Recovery(rolled_forward=finish_committed(lake))
    root = lake.root.rstrip("/") + "/"
    for path in lake.fs.find(lake.root):
        base = posixpath.basename(path)
        if base.startswith(STAGED) or (base.startswith(".") and ".tmp-" in base):
            lake.fs.rm(path)
            out.removed.append(path[len(root):] if path.startswith(root) else path)
    return out
