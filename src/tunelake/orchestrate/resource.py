"""The workspace as a Dagster resource: each asset opens it when it runs, so `TUNELAKE_HOME` (or the resource's
`home`) is read in the run's process, and settings resolve as they do for the CLI (tunelake.toml < environment <
the resource's `settings`)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from tunelake.workspace import Workspace, open_workspace


class TunelakeResource(dg.ConfigurableResource):
    """Where the workspace is: `home` (empty: $TUNELAKE_HOME, else ./tunelake-data) and setting overrides."""

    home: str = ""
    settings: dict[str, str] = {}
    inbox: str = ""  # export files to import, one folder per listener (empty: <workspace>/inbox)

    def workspace(self) -> Workspace:
        return open_workspace(self.home or None, dict(self.settings) or None)

    def inbox_dir(self, ws: Workspace) -> Path:
        return Path(self.inbox) if self.inbox else ws.root / "inbox"
