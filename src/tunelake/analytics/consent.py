"""What each listener agreed to share, kept in the lake's manifest (`_manifest/consent/<handle>.json`).

Comparing two listeners shows each one's favourites to the other, so it is opt-in on both sides: `tunelake
compare A B` (and the dashboard's compare view, and later the web service) refuse unless both have granted
`compare`. The document lives in the lake beside the user entry, not in the warehouse, so a rebuild never loses
it and revoking takes effect at once, without a rebuild. Writes hold the workspace lock and go through a lake
transaction, like every other write to the lake.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tunelake.errors import InputError
from tunelake.lake import zones
from tunelake.lake.store import Lake
from tunelake.workspace import Workspace

PURPOSES = ("compare",)


class ConsentError(InputError):
    """A listener named in the request has not agreed to what it needs; says how they can agree."""


def _check(lake: Lake, handle: str, purpose: str) -> None:
    if purpose not in PURPOSES:
        raise InputError(f"unknown consent purpose {purpose!r}", field="purpose", hint=f"one of {', '.join(PURPOSES)}")
    zones.check_handle(handle)
    if not lake.exists(zones.user_entry(handle)):
        raise InputError(f"unknown user {handle!r}", field="user",
                         hint="import the listener's data first (`tunelake import … --user NAME`)")


def consent(lake: Lake, handle: str) -> dict[str, Any]:
    """The listener's consent document: {purpose: {"granted": bool, "changed_at": iso}}; empty when never set."""
    rel = zones.consent_entry(handle)
    return dict(lake.read_json(rel).get("purposes", {})) if lake.exists(rel) else {}


def has_consented(lake: Lake, handle: str, purpose: str = "compare") -> bool:
    """True only when the listener granted `purpose` and has not revoked it since (never asked = no)."""
    return bool(consent(lake, handle).get(purpose, {}).get("granted", False))


def set_consent(ws: Workspace, handle: str, purpose: str = "compare", granted: bool = True) -> dict[str, Any]:
    """Grant or revoke one purpose for one listener; returns the new document's purposes. Idempotent."""
    lake = ws.lake
    with ws.writing(command=f"consent {'grant' if granted else 'revoke'} {purpose}"):
        _check(lake, handle, purpose)
        purposes = consent(lake, handle)
        if purposes.get(purpose, {}).get("granted") is granted:
            return purposes
        purposes[purpose] = {"granted": granted, "changed_at": datetime.now(UTC).isoformat(timespec="seconds")}
        with lake.transaction(f"consent {handle}"):
            lake.write_json(zones.consent_entry(handle), {"handle": handle, "purposes": purposes})
        return purposes


def require_consent(lake: Lake, handles: list[str], purpose: str = "compare") -> None:
    """ConsentError naming every listener in `handles` who has not granted `purpose`."""
    missing = [h for h in handles if not has_consented(lake, h, purpose)]
    if missing:
        who = " and ".join(missing)
        raise ConsentError(f"{who} {'has' if len(missing) == 1 else 'have'} not agreed to be compared",
                           field="consent",
                           hint="each listener runs `tunelake consent grant --user NAME`; "
                                "`tunelake consent revoke --user NAME` withdraws it")
