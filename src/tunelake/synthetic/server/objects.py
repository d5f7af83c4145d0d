"""Spotify's JSON objects (track, album, artist, audio features, user, playlist, paging) built from the world.

The shapes follow the Web API's OpenAPI description, which the tests validate every response against. They are
plain functions of a `View`, so that the same world answers any host and port and either app mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tunelake.synthetic.server.world_view import Listener, World, base62_id, split_ids

OPEN = "https://open.spotify.com"
_FEATURES = (
    "danceability",
    "energy",
    "loudness",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
)


@dataclass(frozen=True)
class View:
    """The world as one request sees it.

    `base` is the scheme and host the client used, so `href`/`next` links lead back to this server. `dev` is
    development mode, where Spotify leaves out genres, popularity and follower counts.
    """

    world: World
    base: str
    dev: bool


def href(view: View, path: str, **params: Any) -> str:
    params = {k: v for k, v in params.items() if v is not None}
    return f"{view.base}/v1{path}" + (f"?{urlencode(params)}" if params else "")


def page(view: View, path: str, items: list[Any], total: int, limit: int, offset: int, **extra: Any) -> dict:
    """An offset paging object; `extra` query parameters (e.g. time_range) carry over into next/previous."""
    nxt = href(view, path, offset=offset + limit, limit=limit, **extra) if offset + limit < total else None
    prev = href(view, path, offset=max(0, offset - limit), limit=limit, **extra) if offset > 0 else None
    return {
        "href": href(view, path, offset=offset, limit=limit, **extra),
        "items": items,
        "limit": limit,
        "next": nxt,
        "offset": offset,
        "previous": prev,
        "total": total,
    }


def _ext(view: View, kind: str, id_: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{OPEN}/{kind}/{id_}"},
        "href": href(view, f"/{kind}s/{id_}"),
        "id": id_,
        "type": kind,
        "uri": f"spotify:{kind}:{id_}",
    }


# --- catalogue --------------------------------------------------------------------------------------------------


def artist_simple(view: View, artist_id: str, name: str | None = None) -> dict[str, Any]:
    """`name` is the track's own artist credit, for artists the catalogue does not list."""
    a = view.world.artists.get(artist_id) or {}
    return {**_ext(view, "artist", artist_id), "name": a.get("artist_name") or name or ""}


def artist(view: View, artist_id: str) -> dict[str, Any] | None:
    a = view.world.artists.get(artist_id)
    if a is None:
        return None
    obj = {**artist_simple(view, artist_id), "images": []}
    if not view.dev:
        obj["genres"] = split_ids(a.get("genres"))
        obj["popularity"] = int(a.get("popularity") or 0)
        obj["followers"] = {"href": None, "total": int(a.get("followers") or 0)}
    return obj


def _album_base(view: View, album_id: str) -> dict[str, Any] | None:
    al = view.world.albums.get(album_id)
    if al is None:
        return None
    return {
        **_ext(view, "album", album_id),
        "album_type": al.get("album_type") or "album",
        "total_tracks": int(al.get("total_tracks") or len(view.world.album_tracks.get(album_id, []))),
        "available_markets": [],
        "images": [],
        "name": al.get("album_name") or "",
        "release_date": str(al.get("release_date") or "1970"),
        "release_date_precision": al.get("release_date_precision") or "year",
        "artists": [artist_simple(view, al["artist_id"])] if al.get("artist_id") else [],
    }


def album(view: View, album_id: str) -> dict[str, Any] | None:
    obj = _album_base(view, album_id)
    if obj is None:
        return None
    world = view.world
    ids = world.album_tracks.get(album_id, [])
    items = [track(view, t, simplified=True) for t in ids[:50]]
    popularity = 0 if view.dev or not ids else int(max((world.tracks[t].get("popularity") or 0) for t in ids))
    obj.update(
        {
            "tracks": page(view, f"/albums/{album_id}/tracks", items, len(ids), 50, 0),
            "copyrights": [],
            "external_ids": {},
            "genres": [],
            "label": "tunelake synthetic",
            "popularity": popularity,
        }
    )
    return obj


def track(view: View, track_id: str, simplified: bool = False) -> dict[str, Any] | None:
    """A full track, or the simplified one (no album, ids or popularity) that albums list."""
    t = view.world.tracks.get(track_id)
    if t is None:
        return None
    names = split_ids(t.get("artist_names"))
    artists = [
        artist_simple(view, a, names[i] if i < len(names) else None)
        for i, a in enumerate(split_ids(t.get("artist_ids")))
    ]
    obj = {
        **_ext(view, "track", track_id),
        "artists": artists,
        "available_markets": [],
        "disc_number": 1,
        "duration_ms": int(t.get("duration_ms") or 0),
        "explicit": bool(t.get("explicit")),
        "is_local": False,
        "is_playable": True,
        "name": t.get("track_name") or "",
        "preview_url": None,
        "track_number": view.world.track_number.get(track_id, 1),
    }
    if simplified:
        return obj
    # A track whose album the catalogue lacks still needs one: make it up from the track's own fields.
    obj["album"] = _album_base(view, t.get("album_id") or "") or {
        **_ext(view, "album", t.get("album_id") or base62_id("album|" + track_id)),
        "album_type": "album",
        "total_tracks": 1,
        "available_markets": [],
        "images": [],
        "name": t.get("album_name") or "",
        "release_date": str(t.get("release_date") or "1970"),
        "release_date_precision": t.get("release_date_precision") or "year",
        "artists": artists[:1],
    }
    obj["external_ids"] = {"isrc": t["isrc"]} if t.get("isrc") else {}
    if not view.dev:
        obj["popularity"] = int(t.get("popularity") or 0)
    return obj


def audio_features(view: View, track_id: str) -> dict[str, Any] | None:
    """None for tracks the catalogue has no features for, which the API answers with 404."""
    t = view.world.tracks.get(track_id)
    if t is None or t.get("danceability") is None:
        return None
    obj: dict[str, Any] = {k: float(t[k]) for k in _FEATURES if t.get(k) is not None}
    for k in ("key", "mode", "time_signature"):
        if t.get(k) is not None:
            obj[k] = int(t[k])
    obj.update(
        {
            "id": track_id,
            "type": "audio_features",
            "uri": f"spotify:track:{track_id}",
            "track_href": href(view, f"/tracks/{track_id}"),
            "analysis_url": href(view, f"/audio-analysis/{track_id}"),
            "duration_ms": int(t.get("duration_ms") or 0),
        }
    )
    return obj


# --- users and playlists ------------------------------------------------------------------------------------------


def user(view: View, handle: str) -> dict[str, Any]:
    """A public user, as a playlist's owner."""
    return {**_ext(view, "user", handle), "display_name": handle}


def me(view: View, listener: Listener) -> dict[str, Any]:
    obj = {
        **_ext(view, "user", listener.handle),
        "display_name": listener.handle,
        "images": [],
        "followers": {"href": None, "total": 0},
        "product": "premium",
    }
    if listener.country:
        obj["country"] = listener.country
    return obj


def playlist_simple(view: View, handle: str, pl: dict[str, Any]) -> dict[str, Any]:
    """`items` and its older name `tracks` both, so that clients of either vintage find the reference."""
    ref = {"href": href(view, f"/playlists/{pl['id']}/items"), "total": len(pl["items"])}
    return {
        **_ext(view, "playlist", pl["id"]),
        "collaborative": False,
        "description": pl["description"],
        "images": [],
        "name": pl["name"],
        "owner": user(view, handle),
        "public": pl["public"],
        "snapshot_id": f"snap-{pl['snapshot']}",
        "items": ref,
        "tracks": ref,
    }


def playlist_item(view: View, handle: str, added: str, track_id: str) -> dict[str, Any]:
    obj = track(view, track_id)
    return {"added_at": added, "added_by": _ext(view, "user", handle), "is_local": False, "item": obj, "track": obj}


def playlist_items(view: View, handle: str, pl: dict[str, Any], limit: int, offset: int) -> dict[str, Any]:
    """Entries whose track the catalogue lacks are left out (and not counted): every item has a full track."""
    entries = [e for e in pl["items"] if e[1] in view.world.tracks]
    items = [playlist_item(view, handle, a, t) for a, t in entries[offset : offset + limit]]
    return page(view, f"/playlists/{pl['id']}/items", items, len(entries), limit, offset)


def playlist_full(view: View, handle: str, pl: dict[str, Any]) -> dict[str, Any]:
    obj = playlist_simple(view, handle, pl)
    first = playlist_items(view, handle, pl, 100, 0)
    obj.update({"followers": {"href": None, "total": 0}, "items": first, "tracks": first})
    return obj
