"""The Web API (`/v1/…`): every route declared once as a werkzeug rule and dispatched by endpoint name.

Handlers are functions of the request's `Call` and the URL's values that return the JSON body; the status of a
success is declared with the endpoint (`ENDPOINTS`), and anything unrouted is the 404 Spotify gives. Parameter
checks answer the 400s a client must handle.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from tunelake.synthetic.server import objects
from tunelake.synthetic.server.live import Timeline
from tunelake.synthetic.server.objects import View
from tunelake.synthetic.server.responses import ApiError
from tunelake.synthetic.server.world_view import Listener, base62_id, iso_ms, iso_s, split_ids, uri_id

TIME_RANGES = {"short_term": 28, "medium_term": 182, "long_term": None}  # days before the world's end
NOT_FOUND = "Service not found"


@dataclass(frozen=True)
class Call:
    """One authorised Web API request: who asks, how they see the world, and the server state they may change."""

    view: View
    handle: str
    req: Request
    timeline: Timeline  # which plays have happened (static world, or live simulated time)
    recent_limit: int | None  # expose only the last N plays, as the real API does with 50; None: all
    writes: threading.RLock  # playlist changes

    @property
    def listener(self) -> Listener:
        return self.view.world.listener(self.handle)


# --- parameters ---------------------------------------------------------------------------------------------------


def _limit(call: Call, default: int, maximum: int) -> int:
    raw = call.req.args.get("limit")
    try:
        limit = int(raw) if raw not in (None, "") else default
    except ValueError:
        raise ApiError(400, "Invalid limit") from None
    if not 1 <= limit <= maximum:
        raise ApiError(400, "Invalid limit")
    return limit


def _offset(call: Call) -> int:
    try:
        offset = int(call.req.args.get("offset") or 0)
    except ValueError:
        raise ApiError(400, "Invalid offset") from None
    if offset < 0:
        raise ApiError(400, "Invalid offset")
    return offset


def _body(call: Call) -> Any:
    return call.req.get_json(force=True, silent=True)


def _track_ids(call: Call) -> list[str]:
    """Track URIs from a JSON list, `{"uris": […]}` or `?uris=a,b`: Spotipy and the docs use all three."""
    body = _body(call)
    uris: list[str] = []
    if isinstance(body, list):
        uris = body
    elif isinstance(body, dict) and body.get("uris"):
        uris = body["uris"]
    elif call.req.args.get("uris"):
        uris = call.req.args["uris"].split(",")
    if len(uris) > 100:
        raise ApiError(400, "Too many items: at most 100 per request")
    ids = []
    for uri in uris:
        tid = uri_id(uri, "track")
        if tid is None:
            raise ApiError(400, f"Invalid track uri: {uri}")
        ids.append(tid)
    return ids


# --- the listener's data ------------------------------------------------------------------------------------------


def me(call: Call) -> dict[str, Any]:
    return objects.me(call.view, call.listener)


def _visible_plays(call: Call) -> list[tuple[int, str]]:
    plays = call.timeline.plays(call.handle)
    if call.recent_limit is not None:
        plays = plays[-call.recent_limit :]
    return plays


def recently_played(call: Call) -> dict[str, Any]:
    """Cursor paging over the visible plays. With `after`, the *oldest* plays after the cursor come first (newest
    first inside the page) and `next` walks forward; with `before` (or no cursor), the newest before it, and `next`
    walks back. With `recent_limit` (the real API's 50) both stop at the edge of the last 50 plays."""
    view, q = call.view, call.req.args
    limit = _limit(call, 20, 50)
    after, before = q.get("after"), q.get("before")
    if after and before:
        raise ApiError(400, "Only one of after or before may be given")
    try:
        after_ms = int(after) if after else None
        before_ms = int(before) if before else None
    except ValueError:
        raise ApiError(400, "Invalid cursor") from None
    plays = _visible_plays(call)
    more = False
    if after_ms is not None:
        newer = [p for p in plays if p[0] > after_ms]
        chunk, more = newer[:limit], len(newer) > limit
    else:
        older = [p for p in plays if before_ms is None or p[0] < before_ms]
        chunk, more = older[-limit:], len(older) > limit
    chunk = sorted(chunk, reverse=True)
    items = []
    for ms, tid in chunk:
        track = objects.track(view, tid)
        if track is None:
            continue
        items.append({"track": track, "played_at": iso_ms(ms), "context": None})
    cursors = {"after": str(chunk[0][0]), "before": str(chunk[-1][0])} if chunk else None
    path = "/me/player/recently-played"
    nxt = None
    if more and chunk:
        nxt = (
            objects.href(view, path, after=chunk[0][0], limit=limit)
            if after_ms is not None
            else objects.href(view, path, before=chunk[-1][0], limit=limit)
        )
    return {
        "href": objects.href(view, path, limit=limit, after=after, before=before),
        "items": items,
        "limit": limit,
        "next": nxt,
        "cursors": cursors,
        "total": len(plays),
    }


def top(call: Call, kind: str) -> dict[str, Any]:
    """Play counts over the time range before the world's end date (not today), so results never go stale; in
    live mode, over the plays so far, before the simulated now."""
    view, world = call.view, call.view.world
    time_range = call.req.args.get("time_range") or "medium_term"
    if time_range not in TIME_RANGES:
        raise ApiError(400, "Invalid time range")
    limit, offset = _limit(call, 20, 50), _offset(call)
    days = TIME_RANGES[time_range]
    plays, end = call.timeline.top_plays(call.handle)
    end_ms = int(end.timestamp() * 1000)
    start_ms = end_ms - days * 86_400_000 if days else None
    counts: Counter[str] = Counter()
    for ms, tid in plays:
        if start_ms is not None and ms < start_ms:
            continue
        if kind == "tracks":
            counts[tid] += 1
        else:
            for a in split_ids((world.tracks.get(tid) or {}).get("artist_ids")):
                counts[a] += 1
    ranked = [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    shape = objects.track if kind == "tracks" else objects.artist
    known = world.tracks if kind == "tracks" else world.artists
    ranked = [i for i in ranked if i in known][:50]
    items = [shape(view, i) for i in ranked[offset : offset + limit]]
    return objects.page(view, f"/me/top/{kind}", items, len(ranked), limit, offset, time_range=time_range)


def saved(call: Call) -> dict[str, Any]:
    limit, offset = _limit(call, 20, 50), _offset(call)
    tracks = call.view.world.tracks
    rows = [s for s in call.listener.saved if s[1] in tracks]
    items = [
        {"added_at": added, "track": objects.track(call.view, tid)} for added, tid in rows[offset : offset + limit]
    ]
    return objects.page(call.view, "/me/tracks", items, len(rows), limit, offset)


# --- playlists ----------------------------------------------------------------------------------------------------


def _find_playlist(call: Call, playlist_id: str) -> dict[str, Any]:
    for pl in call.listener.playlists:
        if pl["id"] == playlist_id:
            return pl
    world = call.view.world
    for handle in world.handles:  # someone else's playlist: readable, not writable
        for pl in world.listener(handle).playlists:
            if pl["id"] == playlist_id:
                return pl
    raise ApiError(404, "Resource not found")


def _owned_playlist(call: Call, playlist_id: str) -> dict[str, Any]:
    pl = _find_playlist(call, playlist_id)
    if pl not in call.listener.playlists:
        raise ApiError(403, "You cannot modify a playlist you do not own")
    return pl


def my_playlists(call: Call, user_id: str | None = None) -> dict[str, Any]:
    """`/users/{id}/playlists` lists the caller's playlists whoever `id` is: the fake has no public profiles."""
    limit, offset = _limit(call, 20, 50), _offset(call)
    pls = call.listener.playlists
    items = [objects.playlist_simple(call.view, call.handle, p) for p in pls[offset : offset + limit]]
    return objects.page(call.view, "/me/playlists", items, len(pls), limit, offset)


def playlist(call: Call, playlist_id: str) -> dict[str, Any]:
    return objects.playlist_full(call.view, call.handle, _find_playlist(call, playlist_id))


def playlist_items(call: Call, playlist_id: str) -> dict[str, Any]:
    pl = _find_playlist(call, playlist_id)
    limit, offset = _limit(call, 100, 100), _offset(call)
    return objects.playlist_items(call.view, call.handle, pl, limit, offset)


def create_playlist(call: Call, user_id: str | None = None) -> dict[str, Any]:
    if user_id is not None and user_id != call.handle:
        raise ApiError(403, "You cannot create a playlist for another user")
    body = _body(call) or {}
    name = body.get("name") if isinstance(body, dict) else None
    if not name:
        raise ApiError(400, "Missing required field: name")
    with call.writes:
        pl = {
            "id": base62_id(f"created|{call.handle}|{name}|{time.time_ns()}"),
            "name": name,
            "description": body.get("description") or "",
            "items": [],
            "snapshot": 1,
            "public": bool(body.get("public", True)),
        }
        call.listener.playlists.append(pl)
    return objects.playlist_full(call.view, call.handle, pl)


def add_items(call: Call, playlist_id: str) -> dict[str, Any]:
    pl = _owned_playlist(call, playlist_id)
    ids = _track_ids(call)
    body = _body(call)
    pos = call.req.args.get("position") or (body.get("position") if isinstance(body, dict) else None)
    now = iso_s(datetime.now(UTC))
    with call.writes:
        new = [(now, t) for t in ids]
        if pos is None:
            pl["items"].extend(new)
        else:
            pl["items"][int(pos) : int(pos)] = new
        pl["snapshot"] += 1
    return {"snapshot_id": f"snap-{pl['snapshot']}"}


def replace_items(call: Call, playlist_id: str) -> dict[str, Any]:
    pl = _owned_playlist(call, playlist_id)
    ids = _track_ids(call)
    now = iso_s(datetime.now(UTC))
    with call.writes:
        pl["items"] = [(now, t) for t in ids]
        pl["snapshot"] += 1
    return {"snapshot_id": f"snap-{pl['snapshot']}"}


# --- the catalogue ------------------------------------------------------------------------------------------------

# kind → (object shape, most ids one batch request may ask for)
_CATALOGUE: dict[str, tuple[Callable[[View, str], dict[str, Any] | None], int]] = {
    "tracks": (objects.track, 50),
    "albums": (objects.album, 20),
    "artists": (objects.artist, 50),
    "audio-features": (objects.audio_features, 100),
}


def several(call: Call, kind: str) -> dict[str, Any]:
    """Batch `?ids=`: forbidden to development-mode apps since 2026, like audio features since Nov 2024."""
    if "ids" not in call.req.args:
        raise ApiError(400, "Missing required field: ids")
    if call.view.dev:
        raise ApiError(403, "Forbidden")
    shape, max_ids = _CATALOGUE[kind]
    ids = [i for i in call.req.args.get("ids", "").split(",") if i]
    if not ids:
        raise ApiError(400, "Missing required field: ids")
    if len(ids) > max_ids:
        raise ApiError(400, "Too many ids requested")
    return {kind.replace("-", "_"): [shape(call.view, i) for i in ids]}


def one(call: Call, kind: str, item_id: str) -> dict[str, Any]:
    if kind == "audio-features" and call.view.dev:
        raise ApiError(403, "Forbidden")
    obj = _CATALOGUE[kind][0](call.view, item_id)
    if obj is None:
        raise ApiError(404, "Non existing id" if kind == "tracks" else "Resource not found")
    return obj


def ids_missing(call: Call, kind: str, rest: str) -> dict[str, Any]:
    """`/tracks/a/b` is a batch request without ids, as the fake has always answered it."""
    raise ApiError(400, "Missing required field: ids")


# --- the map ------------------------------------------------------------------------------------------------------

_KIND = "<any(tracks, albums, artists, 'audio-features'):kind>"  # the catalogue, batch (`?ids=`) or one by id
GET, POST, PUT = ["GET"], ["POST"], ["PUT"]

API = Map(
    [
        Rule("/me", endpoint="me", methods=GET),
        Rule("/me/player/recently-played", endpoint="recently_played", methods=GET),
        Rule("/me/top/<any(artists, tracks):kind>", endpoint="top", methods=GET),
        Rule("/me/tracks", endpoint="saved", methods=GET),
        Rule("/me/playlists", endpoint="my_playlists", methods=GET),
        Rule("/users/<user_id>/playlists", endpoint="my_playlists", methods=GET),
        Rule("/me/playlists", endpoint="create_playlist", methods=POST),
        Rule("/users/<user_id>/playlists", endpoint="create_playlist", methods=POST),
        Rule("/playlists/<playlist_id>", endpoint="playlist", methods=GET),
        Rule("/playlists/<playlist_id>/items", endpoint="playlist_items", methods=GET),
        Rule("/playlists/<playlist_id>/tracks", endpoint="playlist_items", methods=GET),
        Rule("/playlists/<playlist_id>/items", endpoint="add_items", methods=POST),
        Rule("/playlists/<playlist_id>/tracks", endpoint="add_items", methods=POST),
        Rule("/playlists/<playlist_id>/items", endpoint="replace_items", methods=PUT),
        Rule("/playlists/<playlist_id>/tracks", endpoint="replace_items", methods=PUT),
        Rule(f"/{_KIND}", endpoint="several", methods=GET),
        Rule(f"/{_KIND}/<item_id>", endpoint="one", methods=GET),
        Rule(f"/{_KIND}/<path:rest>", endpoint="ids_missing", methods=GET),
    ]
)

# endpoint → (handler, status of a success)
ENDPOINTS: dict[str, tuple[Callable[..., dict[str, Any]], int]] = {
    "me": (me, 200),
    "recently_played": (recently_played, 200),
    "top": (top, 200),
    "saved": (saved, 200),
    "my_playlists": (my_playlists, 200),
    "create_playlist": (create_playlist, 201),
    "playlist": (playlist, 200),
    "playlist_items": (playlist_items, 200),
    "add_items": (add_items, 201),
    "replace_items": (replace_items, 200),
    "several": (several, 200),
    "one": (one, 200),
    "ids_missing": (ids_missing, 200),
}


def dispatch(call: Call, rest: str) -> tuple[dict[str, Any], int]:
    """Answer a Web API request; `rest` is its path after `/v1/`.

    Empty segments are dropped first: the fake has always read `/v1//me/` as `/v1/me` (Spotipy sends `tracks/?ids=`),
    where werkzeug would redirect. HEAD is refused because werkzeug would answer it from the GET rules.
    """
    if call.req.method == "HEAD":
        raise ApiError(404, NOT_FOUND)
    path = "/" + "/".join(part for part in rest.split("/") if part)
    try:
        endpoint, values = API.bind("fake-spotify").match(path, call.req.method)
    except HTTPException:  # an unknown path and a known path with another method alike: 404, never 405
        raise ApiError(404, NOT_FOUND) from None
    handler, status = ENDPOINTS[endpoint]
    return handler(call, **values), status
