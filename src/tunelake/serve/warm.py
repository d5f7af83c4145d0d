"""Keep the service's chart cache warm: each time a new warehouse file becomes current (a build by the collector,
an upload, `tunelake run`), compute everyone's unfiltered charts and then every listener account's own, in one
background thread. The cache is keyed by warehouse file, so until this pass reaches a listener, their first page
after a build is computed on demand, as before; a pass costs about 0.2 s of compute per listener on the demo world
(docs/benchmarks.md, serve).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tunelake.workspace import Workspace

log = logging.getLogger(__name__)


class Warmer:
    """The background pass. `warmed` is set after each complete pass; `stop` ends the thread after the chart
    in hand (call `close()` before closing the dashboard's warehouse)."""

    def __init__(self, ws: Workspace, app: Any, every_s: float = 10.0) -> None:
        self.ws, self.app, self.every_s = ws, app, every_s
        self.stop, self.warmed = threading.Event(), threading.Event()
        self.passes = 0
        self.thread = threading.Thread(target=self._run, name="tunelake-serve-warm", daemon=True)

    def start(self) -> Warmer:
        self.thread.start()
        return self

    def viewers(self) -> list[Any]:
        from tunelake.analytics.insights import listener_viewer
        from tunelake.serve import accounts

        return [None] + [listener_viewer(a.user_key, a.name) for a in accounts.list_accounts(self.ws)
                         if not a.is_admin]

    def _run(self) -> None:
        from tunelake.dashboard.app import warm_now

        seen = None
        while not self.stop.is_set():
            try:
                current = self.app._tunelake_warehouse.current_file()
            except Exception:  # no warehouse yet, or it moved mid-check: look again next time
                log.debug("warm-up: no current warehouse file", exc_info=True)
                current = None
            if current is not None and current != seen:
                self.warmed.clear()
                for viewer in self.viewers():
                    if self.stop.is_set():
                        return
                    warm_now(self.app, viewer)
                seen = current
                self.passes += 1
                self.warmed.set()
            self.stop.wait(self.every_s)

    def close(self, timeout_s: float = 120.0) -> None:
        self.stop.set()
        self.thread.join(timeout_s)


__all__ = ["Warmer"]
