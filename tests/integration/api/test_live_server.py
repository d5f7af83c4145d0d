"""The fake Spotify server in live mode, over HTTP with Spotipy: only the last 50 plays, new plays as simulated time
passes, the same plays for the same seed and clock, a truth that is exactly what a perfect poller sees, and every
fault still firing. The clock is moved through `/_live/clock`, so nothing sleeps."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import spotipy

from tunelake.synthetic.server import REAL_RECENT_LIMIT, FakeSpotify, parse_fault_spec

H = "listener-0002"
HOUR_S = 3600
REDIRECT = "http://127.0.0.1:8888/callback"


@pytest.fixture
def live(world: Path) -> Iterator[FakeSpotify]:
    with FakeSpotify(world, live=0) as srv:  # speed 0: the clock moves only when a test moves it
        yield srv


def _login(srv: FakeSpotify, handle: str) -> dict:
    """The token answer of a PKCE login (access and refresh token)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    r = requests.get(f"{srv.accounts_url}/authorize", allow_redirects=False, timeout=10, params={
        "client_id": "live-test", "response_type": "code", "redirect_uri": REDIRECT, "code_challenge": challenge,
        "code_challenge_method": "S256", "login_hint": handle})
    code = parse_qs(urlparse(r.headers["Location"]).query)["code"][0]
    return requests.post(f"{srv.accounts_url}/api/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "live-test",
        "code_verifier": verifier}).json()


def token(srv: FakeSpotify, handle: str) -> str:
    """A bearer token through the real PKCE flow of the fake accounts service (auto-approved as `handle`)."""
    return _login(srv, handle)["access_token"]


def spotify(srv: FakeSpotify, handle: str = H) -> spotipy.Spotify:
    """Spotipy as a collector would use it against the fake: its own retries off, so every status shows."""
    sp = spotipy.Spotify(auth=token(srv, handle), requests_session=requests.Session(), retries=0, status_retries=0)
    sp.prefix = srv.api_url
    return sp


def clock(srv: FakeSpotify, **body: object) -> dict:
    """Read the simulated clock (no arguments) or change it (`now=`, `advance=` seconds, `speed=`)."""
    url = f"{srv.url}/_live/clock"
    r = requests.post(url, json=body, timeout=10) if body else requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def truth(srv: FakeSpotify, handle: str = H, **params: object) -> list[tuple[int, str]]:
    r = requests.get(f"{srv.url}/_live/truth", params={"user": handle, **params}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["plays"])
    return [(p["played_at_ms"], p["track_id"]) for p in body["plays"]]


def seen(page: dict) -> list[tuple[int, str]]:
    """A recently-played page as (played_at ms, track id), oldest first, from the JSON Spotify returns."""
    from datetime import datetime

    out = []
    for item in page["items"]:
        dt = datetime.fromisoformat(item["played_at"].replace("Z", "+00:00"))
        out.append((round(dt.timestamp() * 1000), item["track"]["id"]))
    return sorted(out)


def test_only_the_last_50_plays_are_visible(live: FakeSpotify) -> None:
    assert live.recent_limit == REAL_RECENT_LIMIT
    clock(live, advance=3 * 24 * HOUR_S)
    history = truth(live)
    assert len(history) > 3 * REAL_RECENT_LIMIT
    sp = spotify(live)
    page = sp.current_user_recently_played(limit=50)
    assert seen(page) == history[-50:]
    oldest = history[-50][0]
    assert page["cursors"] == {"after": str(history[-1][0]), "before": str(oldest)}
    # nothing before the 50: not with `before`, not with an old `after` (it gives the same 50 and stops there)
    assert sp.current_user_recently_played(limit=50, before=oldest)["items"] == []
    assert sp.current_user_recently_played(limit=50, before=history[-3][0])["items"] and seen(
        sp.current_user_recently_played(limit=50, before=history[-3][0])) == history[-50:-3]
    from_start = sp.current_user_recently_played(limit=50, after=0)
    assert seen(from_start) == history[-50:] and from_start["next"] is None
    # smaller pages walk through the same 50 and end there, backwards …
    got, page = [], sp.current_user_recently_played(limit=20)
    while page:
        got += seen(page)
        page = sp.next(page)
    assert sorted(got) == history[-50:]
    # … and forwards from a cursor inside the window
    got, page = [], sp.current_user_recently_played(limit=20, after=history[-45][0])
    while page:
        got += seen(page)
        page = sp.next(page)
    assert sorted(got) == history[-44:]
    with pytest.raises(spotipy.SpotifyException) as exc:
        sp.current_user_recently_played(limit=51)
    assert exc.value.http_status == 400


def test_new_plays_appear_as_the_clock_advances(live: FakeSpotify) -> None:
    sp = spotify(live)
    start = clock(live)["now_ms"]
    assert start == int(live.world.end.timestamp() * 1000)  # simulated time starts at the world's end
    before = truth(live)
    cursor = before[-1][0]
    assert sp.current_user_recently_played(limit=50, after=cursor)["items"] == []  # nothing new yet
    for _ in range(48):  # two simulated days, polled every hour like a careful collector
        now = clock(live, advance=HOUR_S)["now_ms"]
        page = sp.current_user_recently_played(limit=50, after=cursor)
        new = seen(page)
        assert all(cursor < ms <= now for ms, _ in new)
        assert new == [p for p in truth(live) if cursor < p[0]]  # exactly what happened since, no more
        if new:
            cursor = new[-1][0]
    assert len(truth(live)) > len(before)


def test_same_seed_and_clock_give_the_same_plays(world: Path) -> None:
    """Two servers on the same world: one polled every few simulated hours, one jumped straight to the end."""
    with FakeSpotify(world, live=0) as a, FakeSpotify(world, live=0) as b:
        sp_a, sp_b = spotify(a), spotify(b)
        for _ in range(20):
            clock(a, advance=5 * HOUR_S)
            sp_a.current_user_recently_played(limit=50)
        clock(b, now=clock(a)["now_ms"])
        assert clock(a)["now_ms"] == clock(b)["now_ms"]
        for handle in a.world.handles:
            assert truth(a, handle) == truth(b, handle)
        assert len(truth(a)) > len(a.world.listener(H).plays)  # the clock did move past the world's plays
        page_a = json.dumps(sp_a.current_user_recently_played(limit=50)).replace(a.url, "")
        assert page_a == json.dumps(sp_b.current_user_recently_played(limit=50)).replace(b.url, "")  # byte for byte


def test_truth_is_the_union_of_what_a_perfect_poller_sees(live: FakeSpotify) -> None:
    handles = live.world.handles[:4]
    clients = {h: spotify(live, h) for h in handles}
    first = {h: seen(clients[h].current_user_recently_played(limit=50)) for h in handles}
    collected = {h: set(first[h]) for h in handles}
    cursors = {h: first[h][-1][0] if first[h] else 0 for h in handles}
    for _ in range(3 * 24 * 2):  # three simulated days, a poll every 30 minutes, all listeners
        clock(live, advance=HOUR_S / 2)
        for h in handles:
            new = seen(clients[h].current_user_recently_played(limit=50, after=cursors[h]))
            assert len(new) < REAL_RECENT_LIMIT  # well inside the horizon: this poller cannot have missed a play
            collected[h] |= set(new)
            if new:
                cursors[h] = new[-1][0]
    for h in handles:
        expected = [p for p in truth(live, h) if p >= first[h][0]] if first[h] else truth(live, h)
        assert sorted(collected[h]) == expected
        assert truth(live, h, after=first[h][-1][0]) == [p for p in expected if p > first[h][-1]]


def test_a_slow_poller_loses_plays_and_truth_shows_which(live: FakeSpotify) -> None:
    """The loss the collector must detect: more than 50 plays between two polls are gone from the API."""
    sp = spotify(live)
    cursor = seen(sp.current_user_recently_played(limit=50))[-1][0]
    clock(live, advance=10 * 24 * HOUR_S)
    happened = truth(live, after=cursor)
    assert len(happened) > REAL_RECENT_LIMIT
    page = sp.current_user_recently_played(limit=50, after=cursor)
    assert seen(page) == happened[-50:] and page["next"] is None
    assert happened[0][0] < seen(page)[0][0]  # the oldest plays since the cursor are out of reach


def test_faults_still_fire_in_live_mode(live: FakeSpotify) -> None:
    sp = spotify(live)
    clock(live, advance=6 * HOUR_S)
    requests.post(f"{live.url}/_fault", json={"kind": "429", "count": 2, "retry_after": 7}, timeout=10)
    for _ in range(2):
        with pytest.raises(spotipy.SpotifyException) as exc:
            sp.current_user_recently_played(limit=50)
        assert exc.value.http_status == 429 and exc.value.headers["Retry-After"] == "7"
    for kind in ("500", "502", "503"):
        live.faults.add(kind, count=1, path="/v1/me/player/recently-played")
        with pytest.raises(spotipy.SpotifyException) as exc:
            sp.current_user_recently_played(limit=50)
        assert exc.value.http_status == int(kind)
    assert seen(sp.current_user_recently_played(limit=50)) == truth(live)[-50:]  # the burst is over
    live.faults.add("drop", count=1)  # the connection closes with no answer: a network error for the client
    with pytest.raises(requests.ConnectionError):
        sp.current_user_recently_played(limit=50)
    live.faults.add("slow", count=1, delay=0.3)
    t0 = time.perf_counter()
    sp.current_user_recently_played(limit=1)
    assert time.perf_counter() - t0 >= 0.3
    requests.post(f"{live.url}/_fault/expire_tokens", timeout=10)
    with pytest.raises(spotipy.SpotifyException) as exc:
        sp.current_user_recently_played(limit=50)
    assert exc.value.http_status == 401
    live.apply_faults([{"kind": "ttl", "seconds": 0}])  # new tokens are dead on arrival
    with pytest.raises(spotipy.SpotifyException) as exc:
        spotify(live).current_user_recently_played(limit=50)
    assert exc.value.http_status == 401
    requests.delete(f"{live.url}/_fault", timeout=10)
    assert seen(spotify(live).current_user_recently_played(limit=50)) == truth(live)[-50:]
    assert live.count("/v1/me/player/recently-played", 429) == 2


def test_clock_and_truth_endpoints(live: FakeSpotify, server: FakeSpotify) -> None:
    start = clock(live)
    assert start["speed"] == 0 and start["now"] == start["world_end"] == "2026-07-01T00:00:00.000Z"
    assert clock(live, now="2026-07-02T12:00:00Z")["now_ms"] == start["now_ms"] + 36 * HOUR_S * 1000
    back = requests.post(f"{live.url}/_live/clock", json={"now": start["now_ms"]}, timeout=10)
    assert back.status_code == 400 and "cannot set the clock back" in back.json()["error"]["message"]
    for body in ({}, {"advance": "soon"}, {"speed": -2}, {"now": True}, [1]):
        assert requests.post(f"{live.url}/_live/clock", json=body, timeout=10).status_code == 400, body
    assert requests.get(f"{live.url}/_live/truth", params={"user": "nobody"}, timeout=10).status_code == 404
    assert requests.get(f"{live.url}/_live/truth", params={"user": H, "after": "x"}, timeout=10).status_code == 400
    assert requests.get(f"{live.url}/_live/nothing", timeout=10).status_code == 404
    # the static server has no clock; its recently-played still walks the whole history (the tests' default)
    assert requests.get(f"{server.url}/_live/clock", timeout=10).status_code == 404
    assert server.recent_limit is None
    # Python callers: the same clock and truth
    assert live.live_clock(advance_s=60) == live.now_ms() == clock(live)["now_ms"]
    assert live.truth(H) == truth(live)
    assert live.truth(H, after_ms=truth(live)[-3][0]) == truth(live)[-2:] == truth(live, after=truth(live)[-3][0])
    with pytest.raises(RuntimeError, match="live mode is off"):
        server.live_clock(advance_s=1)


def test_top_items_follow_the_live_plays(live: FakeSpotify) -> None:
    """In live mode, short-term top tracks are counted over the four weeks before the simulated now."""
    clock(live, advance=30 * 24 * HOUR_S)
    now = clock(live)["now_ms"]
    counts: dict[str, int] = {}
    for ms, tid in truth(live):
        if ms >= now - 28 * 24 * HOUR_S * 1000:
            counts[tid] = counts.get(tid, 0) + 1
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    top = spotify(live).current_user_top_tracks(limit=5, time_range="short_term")
    assert [t["id"] for t in top["items"]] == [tid for tid, _ in best]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_fake_spotify_live(world: Path) -> None:
    """`tunelake fake-spotify --live SPEED` as its own process: the clock runs SPEED× faster than the wall clock."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tunelake.cli import main; main()", "fake-spotify", "--world", str(world),
         "--port", str(port), "--live", "3600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                first = requests.get(f"{url}/_live/clock", timeout=2).json()
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr and proc.stderr.read()
                time.sleep(0.1)
        assert first["speed"] == 3600
        time.sleep(0.5)  # the one place a test waits: proof that the clock runs on its own
        second = requests.get(f"{url}/_live/clock", timeout=2).json()
        assert second["now_ms"] - first["now_ms"] >= 0.5 * 3600 * 1000
        after = requests.get(f"{url}/_live/truth", params={"user": H}, timeout=10).json()
        assert after["count"] > 0
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "live at 3600x from 2026-07-01 00:00 UTC" in out and "the last 50 plays" in out, (out, err)


def test_cli_fake_spotify_rejects_a_folder_that_is_no_world(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-c", "from tunelake.cli import main; main()", "fake-spotify", "--world", str(tmp_path),
         "--live", "10"],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 2 and "not a synthetic world" in res.stderr and "Traceback" not in res.stderr


def test_api_demo_sees_only_the_last_50(tmp_path: Path, world: Path) -> None:
    """`demo --source api` runs against a faithful server: each listener's pull reads their last 50 plays."""
    from tunelake.cli.demo import api_demo
    from tunelake.workspace import open_workspace

    results = api_demo(open_workspace(tmp_path / "demo"), world, handles=["listener-0003"])
    assert [r.plays_read for r in results] == [REAL_RECENT_LIMIT]


def test_live_export_fills_what_the_api_lost(tmp_path: Path, live: FakeSpotify) -> None:
    """The gap story end to end with the real pull and import: a pull, ten quiet days (far more than 50 plays),
    a pull that can only get the last 50, then the listener's export from `/_live/export`: afterwards the lake
    holds exactly the plays that happened, each once (API and export plays of one playback merged)."""
    import pyarrow.compute as pc

    from tunelake.curate import pull
    from tunelake.curate.ingest import import_paths
    from tunelake.curate.plays import read_user_plays
    from tunelake.lake import manifest
    from tunelake.sources.spotify import client
    from tunelake.workspace import open_workspace

    h = "listener-0004"
    ws = open_workspace(tmp_path / "ws", {"spotify_api_url": live.api_url, "spotify_accounts_url": live.accounts_url,
                                          "spotify_client_id": "live-test"})
    policy = client.RetryPolicy(retry_after_cap_s=5, sleep=lambda s: None)
    pull.login(ws, h, method="auto")
    assert pull.pull(ws, h, ["recent"], policy=policy).plays_read == REAL_RECENT_LIMIT
    first = truth(live, h)[-REAL_RECENT_LIMIT]
    clock(live, advance=10 * 24 * HOUR_S)
    happened = [p for p in truth(live, h) if p >= first]
    assert len(happened) > 3 * REAL_RECENT_LIMIT
    assert pull.pull(ws, h, ["recent"], policy=policy).plays_read == REAL_RECENT_LIMIT  # the rest is lost to the API

    r = requests.get(f"{live.url}/_live/export", params={"user": h}, timeout=30)
    assert r.status_code == 200 and "Streaming_History_Audio_2026" in r.headers["Content-Disposition"]
    rows = r.json()
    assert rows == live.live_export(h)
    music = [row for row in rows if row["spotify_track_uri"]]
    live_plays = happened[REAL_RECENT_LIMIT:]  # the first 50 are the world's, already in its own export files
    assert [row["spotify_track_uri"].rsplit(":", 1)[1] for row in music] == [t for _, t in live_plays]
    assert [row["ts"] for row in music] == [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000)) for ms, _ in live_plays
    ]
    folder = tmp_path / "export" / "Spotify Extended Streaming History"
    folder.mkdir(parents=True)
    (folder / "Streaming_History_Audio_2026_live.json").write_text(r.text)
    imported = import_paths(ws, [str(folder.parent)], h).as_dict()
    assert imported["merged"] == REAL_RECENT_LIMIT  # the second pull's 50 plays are these export rows
    plays = read_user_plays(ws.lake, manifest.user_key_for(h))
    tracks = plays.filter(pc.equal(plays["content_type"], "track"))
    got = sorted(zip(pc.cast(tracks["ended_at"], "int64").to_pylist(), tracks["track_id"].to_pylist(), strict=True))
    assert len(got) == len(happened)  # each playback once
    for (ms, tid), (want_ms, want_tid) in zip(got, happened, strict=True):
        assert tid == want_tid and abs(ms // 1000 - want_ms // 1000) <= 1


def _refresh(srv: FakeSpotify, refresh_token: str, timeout: float = 10) -> requests.Response:
    return requests.post(f"{srv.accounts_url}/api/token", timeout=timeout, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "live-test"})


def test_token_refresh_faults(live: FakeSpotify) -> None:
    """What a collector's token handling must survive: a refresh answering 5xx, 429 or too slowly (transient: the
    refresh token still works afterwards), a refresh with no new refresh token, and a revoked one (invalid_grant)."""
    tok = _login(live, H)
    # a rule without a path faults the Web API only: logins and refreshes go through
    live.faults.add("503", count=1)
    assert _refresh(live, tok["refresh_token"]).status_code == 200
    with pytest.raises(spotipy.SpotifyException):
        spotify(live).me()
    # rules naming /api/token fault the refresh itself
    requests.post(f"{live.url}/_fault", timeout=10, json=[
        {"kind": "503", "count": 1, "path": "/api/token"}, {"kind": "500", "count": 1, "path": "/api/token"},
        {"kind": "429", "count": 1, "retry_after": 4, "path": "/api/token"}])
    statuses = [_refresh(live, tok["refresh_token"]) for _ in range(4)]
    assert [r.status_code for r in statuses] == [503, 500, 429, 200] and statuses[2].headers["Retry-After"] == "4"
    live.faults.add("drop", count=1, path="/api/token")
    with pytest.raises(requests.ConnectionError):
        _refresh(live, tok["refresh_token"])
    live.faults.add("slow", count=1, delay=1.0, path="/api/token")
    with pytest.raises(requests.Timeout):
        _refresh(live, tok["refresh_token"], timeout=0.2)
    time.sleep(1.0)  # let the slow answer finish before the next request
    assert _refresh(live, tok["refresh_token"]).status_code == 200  # no transient failure cost the token
    # Spotify may answer a refresh without a new refresh token: the old one stays the one to keep
    live.apply_faults([{"kind": "no_rotate"}])
    answer = _refresh(live, tok["refresh_token"]).json()
    assert "refresh_token" not in answer and answer["access_token"]
    assert _refresh(live, tok["refresh_token"]).status_code == 200
    # revoked (the app removed, six months passed): invalid_grant for that listener only, until a new login
    other = _login(live, "listener-0003")
    assert requests.post(f"{live.url}/_fault", json={"kind": "revoke_tokens", "user": H}, timeout=10).ok
    r = _refresh(live, tok["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert requests.get(f"{live.api_url}me", headers={"Authorization": f"Bearer {answer['access_token']}"},
                        timeout=10).status_code == 401
    assert _refresh(live, other["refresh_token"]).status_code == 200
    assert _refresh(live, _login(live, H)["refresh_token"]).status_code == 200
    faults = requests.get(f"{live.url}/_fault", timeout=10).json()
    assert faults["rotate_refresh"] is False
    requests.delete(f"{live.url}/_fault", timeout=10)
    assert "refresh_token" in _refresh(live, other["refresh_token"]).json()


def test_fault_spec_names_the_token_faults() -> None:
    assert parse_fault_spec("no_rotate,revoke_tokens:listener-0003,revoke_tokens,503x2,dropx3") == [
        {"kind": "no_rotate"}, {"kind": "revoke_tokens", "user": "listener-0003"}, {"kind": "revoke_tokens"},
        {"kind": "503", "count": 2}, {"kind": "drop", "count": 3}]
    with pytest.raises(ValueError, match="no_rotate"):
        parse_fault_spec("sometimes")


def test_the_rate_limit_is_shared_by_every_listener_of_the_app(live: FakeSpotify) -> None:
    """Spotify limits an app, not a user: one collector's listeners draw on one budget."""
    a, b = spotify(live, H), spotify(live, "listener-0003")
    assert requests.post(f"{live.url}/_fault", json={"kind": "rate", "limit": 6, "window": 30}, timeout=10).ok
    for _ in range(3):
        a.current_user_recently_played(limit=50)
        b.current_user_recently_played(limit=50)
    for sp in (a, b):
        with pytest.raises(spotipy.SpotifyException) as exc:
            sp.current_user_recently_played(limit=50)
        assert exc.value.http_status == 429 and 1 <= int(exc.value.headers["Retry-After"]) <= 30
    assert requests.get(f"{live.url}/_fault", timeout=10).json()["rate"] == [6, 30.0]
    requests.delete(f"{live.url}/_fault", timeout=10)
    assert seen(a.current_user_recently_played(limit=50)) == truth(live)[-50:]
