"""Real Spotipy over HTTP on 127.0.0.1 against the fake server: paging, cursors, merge, dev mode, faults, resume."""

from __future__ import annotations

import math
import stat
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tunelake.curate import pull
from tunelake.curate.ingest import import_paths
from tunelake.curate.plays import read_user_plays
from tunelake.errors import SourceError, TransientSourceError
from tunelake.lake import manifest, zones
from tunelake.sources import types
from tunelake.sources.spotify import auth, client, playlist
from tunelake.synthetic.server import FakeSpotify
from tunelake.workspace import Workspace

H = "listener-0001"


def policy(cap: float = 60, waits: list[float] | None = None) -> client.RetryPolicy:
    """The real retry policy with a recording sleep: Retry-After values are asserted, not slept through."""
    return client.RetryPolicy(
        retry_after_cap_s=cap,
        backoff_base_s=0.01,
        backoff_max_s=0.04,
        sleep=(waits if waits is not None else []).append,
    )


def api_plays(cfg: Workspace, handle: str = H):
    lake = cfg.lake
    t = read_user_plays(lake, manifest.user_key_for(handle))
    return t.filter(pc.equal(t["source"], "api"))


def ms_list(table) -> list[int]:
    return sorted(pc.cast(table["ended_at"], "int64").to_pylist())


def test_recently_played_pages_and_cursor(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    plays = server.world.listener(H).plays
    assert len(plays) > 120
    k = 73
    server.visible_until_ms = plays[k][0]  # only the first k+1 plays have happened yet
    r1 = pull.pull(cfg, H, ["recent"], policy=policy())
    assert r1.plays_read == k + 1 and r1.plays_new == k + 1 and r1.pages == math.ceil((k + 1) / 50)
    assert r1.cursor == plays[k][0]
    lake = cfg.lake
    assert manifest.get_cursor(lake, pull.recent_cursor_name(H)) == plays[k][0]
    server.visible_until_ms = None  # time passes: the rest of the history arrives
    r2 = pull.pull(cfg, H, ["recent"], policy=policy())
    assert r2.plays_read == len(plays) - k - 1 and r2.duplicates == 0
    assert ms_list(api_plays(cfg)) == [ms for ms, _ in plays]  # no gap, no duplicate, ms precision kept
    r3 = pull.pull(cfg, H, ["recent"], policy=policy())
    assert r3.pages == 0 and r3.plays_read == 0
    # raw zone: one response per page with its envelope, and a committed batch for each
    raws = [p for p in lake.glob(f"raw/api/{H}/*/*/*.json") if not p.endswith(".envelope.json")]
    assert len(raws) == r1.pages + r2.pages
    env = lake.read_json(zones.envelope_path(raws[0]))
    assert env["source"] == "api" and env["endpoint"] == "me/player/recently-played"
    assert {b.source for b in manifest.list_batches(lake, handle=H)} == {"api"}
    t = api_plays(cfg)
    assert set(t["ts_precision"].to_pylist()) == {"ms"} and set(t["content_type"].to_pylist()) == {"track"}
    # ms_played is the track's duration (the API does not say how long the track played)
    first = t.filter(pc.equal(t["track_id"], plays[0][1]))
    assert first["ms_played"][0].as_py() == server.world.tracks[plays[0][1]]["duration_ms"]


def test_api_plays_merge_with_export_plays(cfg: Workspace, server: FakeSpotify, world: Path, logged_in: str) -> None:
    export = world / "exports" / H / "Spotify Extended Streaming History"
    imported = import_paths(cfg, [str(export)], H)
    lake = cfg.lake
    before = read_user_plays(lake, manifest.user_key_for(H)).num_rows
    assert before == imported.total("accepted")
    r = pull.pull(cfg, H, ["recent"], policy=policy())
    n_api = len(server.world.listener(H).plays)
    assert r.plays_read == n_api
    assert r.merged == n_api and r.plays_new == 0  # every API play is an export play already there
    assert read_user_plays(lake, manifest.user_key_for(H)).num_rows == before  # nothing counted twice


def test_export_imported_after_api_pull_replaces_api_plays(
    cfg: Workspace, server: FakeSpotify, world: Path, logged_in: str
) -> None:
    """The other order: API first, then the export. Each API play is absorbed by its export playback (which has the
    real ms_played), so the listener's plays are exactly the export's, and the import counts the pairs as merged."""
    r = pull.pull(cfg, H, ["recent"], policy=policy())
    n_api = len(server.world.listener(H).plays)
    assert r.plays_new == n_api
    lake = cfg.lake
    export = world / "exports" / H / "Spotify Extended Streaming History"
    imported = import_paths(cfg, [str(export)], H)
    d = imported.as_dict()
    assert d["merged"] == n_api
    assert d["read"] == d["accepted"] + d["duplicates"] + d["merged"] + sum(d["quarantined"].values())
    plays = read_user_plays(lake, manifest.user_key_for(H))
    assert api_plays(cfg).num_rows == 0
    assert plays.num_rows == d["accepted"] + d["merged"]  # one row per export playback, none twice
    exported_tracks = plays.filter(pc.equal(plays["content_type"], "track")).num_rows
    assert exported_tracks >= n_api
    from tunelake.pipeline import build

    info = build(cfg)  # the reconciliation gates (raw → curated → facts) hold with the replaced rows
    assert info.rows["fact_play"] == exported_tracks


def test_top_saved_playlists_and_enrichment(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    r = pull.pull(cfg, H, policy=policy())
    lake = cfg.lake
    uk = manifest.user_key_for(H)
    top = lake.read_parquet(zones.curated_user_file("top_items", uk))
    assert top.schema.equals(types.TOP_ITEMS)
    assert set(top["time_range"].to_pylist()) == {"short_term", "medium_term", "long_term"}
    lst = server.world.listener(H)
    # rank 1 long-term track is the most played track
    counts: dict[str, int] = {}
    for _, tid in lst.plays:
        counts[tid] = counts.get(tid, 0) + 1
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    lt = top.filter(pc.and_(pc.equal(top["time_range"], "long_term"), pc.equal(top["item_type"], "track")))
    assert lt.filter(pc.equal(lt["rank"], 1))["item_id"][0].as_py() == best
    saved = lake.read_parquet(zones.curated_user_file("saved_tracks", uk))
    assert sorted(saved["track_id"].to_pylist()) == sorted(t for _, t in lst.saved)
    items = lake.read_parquet(zones.curated_user_file("playlist_items", uk))
    assert items.num_rows == sum(len(p["items"]) for p in lst.playlists) == r.playlist_items
    assert r.playlists == len(lst.playlists)
    # enrichment: every track the user's data mentions is described, with artists, albums and audio features
    tracks = lake.read_parquet(zones.curated_file("api_tracks"))
    assert set(tracks["track_id"].to_pylist()) >= {t for _, t in lst.plays}
    assert tracks["popularity"].null_count == 0
    artists = lake.read_parquet(zones.curated_file("api_artists"))
    assert artists["genres"].null_count == 0
    assert lake.read_parquet(zones.curated_file("api_audio_features")).num_rows == tracks.num_rows
    assert r.unavailable == []
    # nothing is fetched twice
    calls_before = len(server.requests)
    r2 = pull.pull(cfg, H, ["enrich"], policy=policy())
    assert r2.enriched == {"tracks": 0, "artists": 0, "albums": 0, "audio_features": 0}
    assert len(server.requests) == calls_before


def test_dev_mode_falls_back_to_single_items(dev_cfg: Workspace, dev_server: FakeSpotify) -> None:
    pull.login(dev_cfg, "listener-0002", method="auto")
    # Pull only what has no embedded track objects, so enrichment has to fetch.
    lake = dev_cfg.lake
    world_export = dev_server.world.root / "exports" / "listener-0002" / "Spotify Extended Streaming History"
    import_paths(dev_cfg, [str(world_export)], "listener-0002")
    r = pull.pull(dev_cfg, "listener-0002", ["enrich"], policy=policy())
    assert set(r.unavailable) == {"batch_metadata", "audio_features"}
    assert dev_server.count("/v1/tracks/", 403) == 1  # tried batch once, then single items
    wanted = {t for _, t in dev_server.world.listener("listener-0002").plays}
    tracks = lake.read_parquet(zones.curated_file("api_tracks"))
    assert set(tracks["track_id"].to_pylist()) >= wanted and r.enriched["tracks"] >= len(wanted)
    assert tracks["popularity"].null_count == tracks.num_rows  # dev mode: no popularity
    assert not lake.exists(zones.curated_file("api_audio_features"))
    # the 403s are remembered: a later run does not knock again
    n403 = dev_server.count("", 403)
    pull.login(dev_cfg, "listener-0003", method="auto")
    pull.pull(dev_cfg, "listener-0003", ["recent", "enrich"], policy=policy())
    assert dev_server.count("", 403) == n403


def test_dev_mode_allows_five_users(dev_cfg: Workspace, dev_server: FakeSpotify) -> None:
    for i in range(1, 6):
        pull.login(dev_cfg, f"listener-000{i}", method="auto")
    with pytest.raises(SourceError, match="access_denied"):
        pull.login(dev_cfg, "listener-0006", method="auto")


def test_429_storm_small_cap_stops_cleanly(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    server.faults.add("429", count=50, retry_after=30)
    with pytest.raises(TransientSourceError, match=r"resume after \d{4}-\d\d-\d\d") as exc:
        pull.pull(cfg, H, ["recent"], policy=policy(cap=5))
    assert exc.value.exit_code == 75 and "tunelake pull --user listener-0001" in (exc.value.hint or "")
    assert manifest.get_cursor(cfg.lake, pull.recent_cursor_name(H)) is None


def test_429_retry_limit_is_named_as_the_cause(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    """Each wait is under the cap, but the waits run out: the message says so, not "asked to wait 1 s (cap …)"."""
    server.faults.add("429", count=50, retry_after=1)
    pol = policy(cap=5)
    with pytest.raises(TransientSourceError) as exc:
        pull.pull(cfg, H, ["recent"], policy=pol)
    msg = str(exc.value)
    assert f"still rate limited after waiting {pol.max_rate_limit_waits} times" in msg
    assert "cap retry_after_cap_s" not in msg


def test_429_storm_larger_cap_succeeds(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    server.faults.add("429", count=3, retry_after=2)
    waits: list[float] = []
    r = pull.pull(cfg, H, ["recent"], policy=policy(cap=5, waits=waits))
    assert waits == [2, 2, 2]  # Retry-After honoured
    assert r.calls["rate_limited"] == 3 and r.plays_read == len(server.world.listener(H).plays)


def test_5xx_bursts_back_off_then_succeed_or_stop(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    server.faults.add("500", count=2)
    server.faults.add("503", count=1)
    server.faults.add("502", count=1, path="/v1/me/top")
    waits: list[float] = []
    r = pull.pull(cfg, H, ["recent", "top"], policy=policy(waits=waits))
    assert r.calls["server_errors"] == 4
    assert waits == [0.01, 0.02, 0.04, 0.01]  # exponential, bounded, reset per call
    assert r.plays_read == len(server.world.listener(H).plays) and r.top_items > 0
    server.faults.add("502", count=20)
    with pytest.raises(TransientSourceError, match="502"):
        pull.pull(cfg, H, ["profile"], policy=policy())


def test_token_expiry_and_refresh(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    server.expire_tokens()
    r = pull.pull(cfg, H, ["profile"], policy=policy())
    assert r.calls["refreshed"] == 1
    assert server.count("/api/token", 200, method="POST") == 2  # login + one refresh
    server.faults.token_ttl = 0  # every token the server issues is dead on arrival
    server.expire_tokens()
    with pytest.raises(SourceError, match="rejected the token") as exc:
        pull.pull(cfg, H, ["profile"], policy=policy())
    assert "auth login --user listener-0001" in (exc.value.hint or "")


def test_not_logged_in_says_how_to_fix(cfg: Workspace) -> None:
    with pytest.raises(SourceError, match="not logged in") as exc:
        pull.pull(cfg, "listener-0004", ["profile"])
    assert "tunelake auth login --user listener-0004" in (exc.value.hint or "")


def test_kill_and_resume_no_gap_no_duplicate(cfg: Workspace, server: FakeSpotify) -> None:
    h = "listener-0005"
    pull.login(cfg, h, method="auto")
    plays = server.world.listener(h).plays
    assert len(plays) > 300

    def crash(pages: int) -> None:
        if pages == 3:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        pull.pull(cfg, h, ["recent"], policy=policy(), page_hook=crash)
    lake = cfg.lake
    assert manifest.get_cursor(lake, pull.recent_cursor_name(h)) == plays[149][0]
    assert ms_list(api_plays(cfg, h)) == [ms for ms, _ in plays[:150]]

    # second failure mode: the API goes down mid-pull (after 2 more pages), the pull stops with a transient error
    def outage(pages: int) -> None:
        if pages == 2:
            server.faults.add("503", count=100)

    with pytest.raises(TransientSourceError):
        pull.pull(cfg, h, ["recent"], policy=policy(), page_hook=outage)
    assert ms_list(api_plays(cfg, h)) == [ms for ms, _ in plays[:250]]
    server.faults.clear()
    r = pull.pull(cfg, h, ["recent"], policy=policy())
    assert r.duplicates == 0
    got = ms_list(api_plays(cfg, h))
    assert got == [ms for ms, _ in plays]  # no gap, no duplicate
    t = api_plays(cfg, h)
    assert len(set(t["play_id"].to_pylist())) == t.num_rows


def test_playlist_push_creates_then_updates(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    ids = sorted(server.world.tracks)[:130]
    r1 = playlist.push_playlist(cfg, H, "tunelake recs", [f"spotify:track:{t}" for t in ids])
    assert r1["created"] and r1["tracks"] == 130
    pl = next(p for p in server.world.listener(H).playlists if p["id"] == r1["playlist_id"])
    assert [t for _, t in pl["items"]] == ids
    r2 = playlist.push_playlist(cfg, H, "tunelake recs", ids[:3])
    assert not r2["created"] and r2["playlist_id"] == r1["playlist_id"]
    assert [t for _, t in pl["items"]] == ids[:3]
    with pytest.raises(SourceError, match="not a Spotify track id"):
        playlist.push_playlist(cfg, H, "x", ["nope"])


def test_token_file_is_private(cfg: Workspace, logged_in: str) -> None:
    path = auth.token_path(cfg, H)
    assert path == cfg.root / "secrets" / "tokens" / f"{H}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_api_demo(tmp_path: Path, world: Path) -> None:
    from tunelake.cli.demo import api_demo
    from tunelake.workspace import open_workspace

    cfg = open_workspace(tmp_path / "demo")
    results = api_demo(cfg, world, handles=["listener-0004", "listener-0005"])
    assert [r.user for r in results] == ["listener-0004", "listener-0005"]
    assert all(r.plays_read > 0 and r.top_items > 0 for r in results)
    lake = cfg.lake
    assert {u["handle"] for u in manifest.list_users(lake)} == {"listener-0004", "listener-0005"}
