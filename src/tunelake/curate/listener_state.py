"""Each connected listener's collection state: when they were last and will next be polled, what the polls brought,
and whether their token still works — one small JSON document per listener in the lake
(`_manifest/collect/<handle>.json`), written by the collector under the workspace lock, read by `tunelake status`
and the dashboard.

The token's state is derived, not stored, except for the one thing only a refresh attempt can tell: Spotify
refused the refresh token (`needs_login`), which only `tunelake auth login` clears.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from tunelake.curate.gaps import open_gaps
from tunelake.lake import manifest, zones
from tunelake.lake.store import Lake
from tunelake.sources.spotify.auth import REFRESH_ISSUED, REFRESH_TOKEN_LIFETIME_S, read_token, token_path
from tunelake.workspace import Workspace

STATE_DIR = f"{zones.MANIFEST}/collect"
EXPIRY_WARNING_S = 14 * 86400


@dataclass
class ListenerState:
    handle: str
    last_poll_at: str | None = None
    next_poll_at: str | None = None
    interval_s: float | None = None
    polls: int = 0
    plays_collected: int = 0
    last_poll_plays: int = 0
    last_error: str | None = None
    needs_login: bool = False
    needs_login_since: str | None = None
    last_snapshot_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rel(handle: str) -> str:
    return f"{STATE_DIR}/{zones.check_handle(handle)}.json"


def read_state(lake: Lake, handle: str) -> ListenerState:
    rel = _rel(handle)
    if not lake.exists(rel):
        return ListenerState(handle)
    doc = lake.read_json(rel)
    return ListenerState(**{k: v for k, v in doc.items() if k in ListenerState.__dataclass_fields__})


def write_state(lake: Lake, state: ListenerState) -> None:
    lake.write_json(_rel(state.handle), state.as_dict())


def connected_handles(ws: Workspace) -> list[str]:
    """Listeners with a Spotify token in the workspace: the ones the collector polls."""
    folder = ws.secrets_dir / "tokens"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))


def token_state(ws: Workspace, handle: str, state: ListenerState, now: float | None = None) -> dict[str, Any]:
    """ok | expiring (refresh token within 14 days of its 6-month expiry) | expired | needs_login | missing."""
    now = time.time() if now is None else now
    token = read_token(ws, handle)
    if token is None or not token_path(ws, handle).exists():
        return {"state": "missing", "message": f"not connected: `tunelake auth login --user {handle}`"}
    if state.needs_login:
        return {"state": "needs_login", "since": state.needs_login_since,
                "message": f"Spotify refused the refresh token: `tunelake auth login --user {handle}`"}
    issued = token.get(REFRESH_ISSUED)
    if not issued:
        return {"state": "ok", "refresh_token_expires_at": None}
    expires = float(issued) + REFRESH_TOKEN_LIFETIME_S
    at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if now >= expires:
        return {"state": "expired", "refresh_token_expires_at": at,
                "message": f"the refresh token expired on {at}: `tunelake auth login --user {handle}`"}
    if now >= expires - EXPIRY_WARNING_S:
        days = (expires - now) / 86400
        return {"state": "expiring", "refresh_token_expires_at": at,
                "message": f"the refresh token expires in {days:.0f} days ({at}): "
                           f"`tunelake auth login --user {handle}` before then"}
    return {"state": "ok", "refresh_token_expires_at": at}


def listeners_status(ws: Workspace, now: float | None = None) -> list[dict[str, Any]]:
    """Per connected (or ever polled) listener: last and next poll, plays collected, open gaps, token state."""
    polled = {n.removesuffix(".json") for n in ws.lake.listdir(STATE_DIR) if n.endswith(".json")}
    known = {u["handle"] for u in manifest.list_users(ws.lake)}
    gaps_by: dict[str, list[dict[str, Any]]] = {}
    for g in open_gaps(ws.lake):
        gaps_by.setdefault(g.handle, []).append(g.as_dict())
    out = []
    for handle in sorted(set(connected_handles(ws)) | polled):
        state = read_state(ws.lake, handle)
        out.append({**state.as_dict(), "registered": handle in known, "token": token_state(ws, handle, state, now),
                    "open_gaps": gaps_by.get(handle, [])})
    return out
