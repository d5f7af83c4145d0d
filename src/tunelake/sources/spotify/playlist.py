"""Writing recommendations back to Spotify: create the listener's named playlist, or replace its items."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tunelake.errors import ConfigError, SourceError
from tunelake.sources.spotify.client import RetryPolicy, SpotifyClient
from tunelake.workspace import Workspace


def paged(client: SpotifyClient, first: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every page of a paged answer, following `next`."""
    page: dict[str, Any] | None = first
    while page:
        yield page
        page = client.call("next", page) if page.get("next") else None


def push_playlist(
    ws: Workspace,
    handle: str,
    name: str,
    track_ids: list[str],
    *,
    public: bool = False,
    description: str = "Made by tunelake",
    policy: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Create the user's playlist `name`, or replace the items of the one that exists, with `track_ids`."""
    if not name.strip():
        raise ConfigError("a playlist needs a name", hint="pass --name")
    ids = []
    for raw in track_ids:
        raw = raw.strip()
        if not raw:
            continue
        tid = raw.rsplit(":", 1)[-1].rsplit("/", 1)[-1].split("?")[0]
        if len(tid) != 22 or not tid.isalnum():
            raise SourceError(f"not a Spotify track id: {raw!r}")
        ids.append(tid)
    client = SpotifyClient(ws, handle, policy)
    me = client.call("me")
    existing = None
    for page in paged(client, client.call("current_user_playlists", limit=50)):
        for pl in page.get("items") or []:
            if pl and pl.get("name") == name and (pl.get("owner") or {}).get("id") == me.get("id"):
                existing = pl
                break
        if existing:
            break
    created = existing is None
    if created:
        existing = client.call("current_user_playlist_create", name, public=public, description=description)
    pid = existing["id"]
    uris = [f"spotify:track:{t}" for t in ids]
    client.call("playlist_replace_items", pid, uris[:100])
    for i in range(100, len(uris), 100):
        client.call("playlist_add_items", pid, uris[i : i + 100])
    return {"user": handle, "playlist_id": pid, "name": name, "created": created, "tracks": len(ids)}
