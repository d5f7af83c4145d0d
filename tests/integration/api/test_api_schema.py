"""Every endpoint of the fake server answers what the Spotify OpenAPI description says (fixed spec + the nullable
fields its SOURCES.md names), errors included."""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests

from tunelake.curate import pull
from tunelake.sources.spotify import auth
from tunelake.synthetic.server import FakeSpotify
from tunelake.workspace import Workspace

if os.environ.get("CI") == "true":  # under CI a missing dependency fails, never skips
    import openapi_schema_validator as osv
    import yaml
else:
    yaml = pytest.importorskip("yaml")
    osv = pytest.importorskip("openapi_schema_validator")

SPEC = Path(
    os.environ.get("TUNELAKE_SPOTIFY_OPENAPI")
    or Path(__file__).resolve().parents[3].parent / "shared" / "data" / "spotify-web-api" / "fixed-spotify-open-api.yml"
)
NULLABLE = {("CursorPagingObject", "next"), ("CursorPagingObject", "cursors"), ("PlayHistoryObject", "context")}


@cache
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.fail(f"the Spotify OpenAPI description is missing: {SPEC}")
    doc = yaml.safe_load(SPEC.read_text())
    schemas = doc["components"]["schemas"]
    for name, prop in NULLABLE:  # the real API returns null there (SOURCES.md)
        original = schemas[name]["properties"][prop]
        schemas[name]["properties"][prop] = {"anyOf": [original, {"type": "object", "nullable": True, "enum": [None]}]}
    return doc


def _deref(node: Any, doc: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:  # a recursive reference: stop here, accept anything
                return {}
            target: Any = doc
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            return _deref(target, doc, (*seen, ref))
        return {k: _deref(v, doc, seen) for k, v in node.items() if k not in ("discriminator", "example")}
    if isinstance(node, list):
        return [_deref(v, doc, seen) for v in node]
    return node


@cache
def response_schema(path: str, method: str, status: int) -> dict[str, Any]:
    doc = spec()
    op = doc["paths"][path][method]
    resp = _deref(op["responses"][str(status)], doc)
    schema = copy.deepcopy(resp["content"]["application/json"]["schema"])
    return _relax_one_of(schema)


def _relax_one_of(node: Any) -> Any:
    """`oneOf: [TrackObject, EpisodeObject]` cannot be exclusive when almost nothing is required: use anyOf."""
    if isinstance(node, dict):
        out = {k: _relax_one_of(v) for k, v in node.items()}
        if "oneOf" in out:
            out["anyOf"] = out.pop("oneOf")
        return out
    if isinstance(node, list):
        return [_relax_one_of(v) for v in node]
    return node


def check(resp: requests.Response, path: str, method: str = "get", status: int | None = None) -> Any:
    expected = status or resp.status_code
    assert resp.status_code == expected, resp.text[:300]
    body = resp.json()
    osv.validate(body, response_schema(path, method, expected), cls=osv.OAS30Validator)
    return body


@pytest.fixture
def session(cfg: Workspace, server: FakeSpotify, logged_in: str) -> requests.Session:
    token = auth.make_auth(cfg, logged_in).cache_handler.get_cached_token()["access_token"]
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def test_every_endpoint_validates(session: requests.Session, server: FakeSpotify) -> None:
    v1 = server.api_url
    h = "listener-0001"
    lst = server.world.listener(h)
    tid = lst.plays[0][1]
    track = server.world.tracks[tid]
    album_id, artist_id = track["album_id"], track["artist_ids"].split(";")[0]

    check(session.get(f"{v1}me"), "/me")
    page = check(
        session.get(f"{v1}me/player/recently-played", params={"limit": 50, "after": 0}), "/me/player/recently-played"
    )
    assert len(page["items"]) == 50 and page["next"]
    last = check(
        session.get(f"{v1}me/player/recently-played", params={"limit": 50, "after": lst.plays[-2][0]}),
        "/me/player/recently-played",
    )
    assert last["next"] is None and len(last["items"]) == 1
    empty = check(
        session.get(f"{v1}me/player/recently-played", params={"after": lst.plays[-1][0]}), "/me/player/recently-played"
    )
    assert empty["cursors"] is None and empty["items"] == []
    check(
        session.get(f"{v1}me/player/recently-played", params={"before": lst.plays[60][0]}), "/me/player/recently-played"
    )
    for kind in ("artists", "tracks"):
        for tr in ("short_term", "medium_term", "long_term"):
            check(
                session.get(f"{v1}me/top/{kind}", params={"time_range": tr, "limit": 10, "offset": 2}),
                f"/me/top/{kind}",
            )
    check(session.get(f"{v1}me/tracks", params={"limit": 5, "offset": 1}), "/me/tracks")
    pls = check(session.get(f"{v1}me/playlists"), "/me/playlists")
    pid = pls["items"][0]["id"]
    check(session.get(f"{v1}users/{h}/playlists"), "/users/{user_id}/playlists")
    check(session.get(f"{v1}playlists/{pid}"), "/playlists/{playlist_id}")
    for sub in ("items", "tracks"):
        check(session.get(f"{v1}playlists/{pid}/{sub}", params={"limit": 3}), f"/playlists/{{playlist_id}}/{sub}")
    ids = ",".join(t for _, t in lst.plays[:5])
    # batch endpoints, with and without the trailing slash Spotipy sends
    for slash in ("", "/"):
        check(session.get(f"{v1}tracks{slash}", params={"ids": ids}), "/tracks")
        check(session.get(f"{v1}albums{slash}", params={"ids": album_id}), "/albums")
        check(session.get(f"{v1}artists{slash}", params={"ids": artist_id}), "/artists")
        check(session.get(f"{v1}audio-features{slash}", params={"ids": ids}), "/audio-features")
    check(session.get(f"{v1}tracks/{tid}"), "/tracks/{id}")
    check(session.get(f"{v1}albums/{album_id}"), "/albums/{id}")
    check(session.get(f"{v1}artists/{artist_id}"), "/artists/{id}")
    check(session.get(f"{v1}audio-features/{tid}"), "/audio-features/{id}")
    created = check(
        session.post(f"{v1}users/{h}/playlists", json={"name": "a"}), "/users/{user_id}/playlists", "post", 201
    )
    created2 = check(session.post(f"{v1}me/playlists", json={"name": "b"}), "/me/playlists", "post", 201)
    uris = [f"spotify:track:{t}" for _, t in lst.plays[:3]]
    for p in (created["id"], created2["id"]):
        check(
            session.post(f"{v1}playlists/{p}/items", json={"uris": uris}), "/playlists/{playlist_id}/items", "post", 201
        )
        check(
            session.put(f"{v1}playlists/{p}/items", json={"uris": uris[:1]}),
            "/playlists/{playlist_id}/items",
            "put",
            200,
        )
    check(session.post(f"{v1}playlists/{pid}/tracks", json=uris), "/playlists/{playlist_id}/tracks", "post", 201)
    # errors
    check(
        session.get(f"{v1}me/player/recently-played", params={"limit": 51}), "/me/player/recently-played", status=400
    ) if "400" in spec()["paths"]["/me/player/recently-played"]["get"]["responses"] else None
    check(requests.get(f"{v1}me", timeout=5), "/me", status=401)
    check(requests.get(f"{v1}me", headers={"Authorization": "Bearer nope"}, timeout=5), "/me", status=401)
    server.faults.add("429", count=1, retry_after=7)
    r = session.get(f"{v1}me/tracks")
    check(r, "/me/tracks", status=429)
    assert r.headers["Retry-After"] == "7"


def test_dev_mode_errors_validate(dev_cfg: Workspace, dev_server: FakeSpotify) -> None:
    pull.login(dev_cfg, "listener-0001", method="auto")
    token = auth.make_auth(dev_cfg, "listener-0001").cache_handler.get_cached_token()["access_token"]
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    v1 = dev_server.api_url
    tid = dev_server.world.listener("listener-0001").plays[0][1]
    for path, spec_path in (
        ("tracks/", "/tracks"),
        ("artists/", "/artists"),
        ("albums/", "/albums"),
        ("audio-features/", "/audio-features"),
    ):
        body = check(s.get(f"{v1}{path}", params={"ids": tid}), spec_path, status=403)
        assert body["error"]["status"] == 403
    check(s.get(f"{v1}audio-features/{tid}"), "/audio-features/{id}", status=403)
    one = check(s.get(f"{v1}tracks/{tid}"), "/tracks/{id}")
    assert "popularity" not in one
    artist = check(s.get(f"{v1}artists/{one['artists'][0]['id']}"), "/artists/{id}")
    assert "genres" not in artist and "popularity" not in artist


def test_live_mode_answers_validate(tmp_path: Path, world: Path) -> None:
    """Live mode's recently-played (the last 50, moving) and top items, and its rate-limit 429, keep the spec."""
    from tunelake.workspace import open_workspace

    with FakeSpotify(world, live=0) as live:
        ws = open_workspace(tmp_path / "ws-live", {"spotify_api_url": live.api_url,
                                                    "spotify_accounts_url": live.accounts_url,
                                                    "spotify_client_id": "tunelake-test"})
        pull.login(ws, "listener-0001", method="auto")
        s = requests.Session()
        token = auth.make_auth(ws, "listener-0001").cache_handler.get_cached_token()["access_token"]
        s.headers["Authorization"] = f"Bearer {token}"
        v1, path = live.api_url, "/me/player/recently-played"
        live.live_clock(advance_s=2 * 86_400)
        page = check(s.get(f"{v1}me/player/recently-played", params={"limit": 50}), path)
        assert len(page["items"]) == 50 and page["next"] is None
        params = {"limit": 10, "before": page["cursors"]["after"]}
        before = check(s.get(f"{v1}me/player/recently-played", params=params), path)
        assert len(before["items"]) == 10 and before["next"]
        newest = int(page["cursors"]["after"])
        assert check(s.get(f"{v1}me/player/recently-played", params={"after": newest}), path)["items"] == []
        live.live_clock(advance_s=86_400)
        check(s.get(f"{v1}me/player/recently-played", params={"after": newest}), path)
        for kind in ("artists", "tracks"):
            check(s.get(f"{v1}me/top/{kind}", params={"time_range": "short_term"}), f"/me/top/{kind}")
        live.apply_faults([{"kind": "rate", "limit": 1, "window": 60}])
        check(s.get(f"{v1}me"), "/me")
        check(s.get(f"{v1}me/player/recently-played"), path, status=429)
