"""The workspace: one folder holding the settings, the lake (or the URL of a remote one), the warehouse files and
the secrets. Built once at the edge — the CLI, the dashboard, a test, a library caller — with `open_workspace`, and
passed down: nothing below rebuilds a Lake or re-reads settings.

It also owns the writer lock (`writing`): every command that changes the lake or the warehouse holds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelake.lake import lock
from tunelake.lake.store import Lake
from tunelake.settings import Settings, default_root, load_settings, private_dir


@dataclass
class Workspace:
    root: Path
    settings: Settings
    debug: bool = False
    _lake: Lake | None = field(default=None, repr=False, compare=False)

    @property
    def lake_url(self) -> str:
        return self.settings.lake_url or str(self.root / "lake")

    @property
    def lake(self) -> Lake:
        """The lake, opened once (a remote one connects on first use)."""
        if self._lake is None:
            self._lake = Lake(self.lake_url)
        return self._lake

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def with_settings(self, **changes: Any) -> Workspace:
        """The same folder with some settings changed (checked as command-line values are)."""
        return Workspace(self.root, self.settings.replace(**changes), self.debug)

    def __getstate__(self) -> dict[str, Any]:  # a worker process opens its own lake
        return {"root": self.root, "settings": self.settings, "debug": self.debug, "_lake": None}

    @contextmanager
    def writing(self, command: str | None = None) -> Iterator[None]:
        """Hold the workspace's writer lock (waiting up to `lock_timeout_s`). When the last holder died mid-write,
        the lake is recovered first (`lake.txn.recover`); a commit a failed write left unfinished is finished.
        Re-entrant: writers inside writers of the same thread just go on."""
        from tunelake.lake.txn import finish_committed, recover

        def takeover(info: dict[str, Any]) -> None:
            done = recover(self.lake)
            lock.log.warning("the last writer (%s) stopped without finishing; recovered the lake: %d commits "
                             "finished, %d unfinished files removed", lock.describe(info), len(done.rolled_forward),
                             len(done.removed))

        with lock.workspace_lock(self.root, timeout_s=float(self.settings.lock_timeout_s), command=command,
                                 on_wait=lock.log.warning, on_takeover=takeover):
            if lock.depth(self.root) == 1:
                private_dir(self.secrets_dir)  # before anything is put in it
                finish_committed(self.lake)
            yield


def open_workspace(root: Path | str | None = None, overrides: dict[str, Any] | None = None,
                   debug: bool = False) -> Workspace:
    """The workspace in `root` (default: $TUNELAKE_HOME or ./tunelake-data) with its settings resolved."""
    path = Path(root) if root else default_root()
    return Workspace(path, load_settings(path, overrides), debug)
