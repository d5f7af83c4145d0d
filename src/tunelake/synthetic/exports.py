"""One synthetic listener's plays written in Spotify's export formats: the extended streaming history (2024+
layout or the old endsong one), video history, and the account-data view of the same plays — with the quirks real
exports have (duplicates, swapped neighbours, null `skipped`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import numpy as np
import orjson

from tunelake.synthetic.catalog_gen import Catalog
from tunelake.synthetic.listeners import TYPES, Listener, Plays

EXTENDED_DIR = "Spotify Extended Streaming History"
ACCOUNT_DIR = "Spotify Account Data"
LEGACY_DIR = "MyData"
ROWS_PER_AUDIO_FILE = 15_000  # ~12 MB with Spotify's pretty printing
ROWS_PER_LEGACY_FILE = 25_000
ROWS_PER_ACCOUNT_FILE = 10_000
DUPLICATE_P = 0.001
SWAP_P = 0.003
SKIPPED_NULL_P = 0.015

NEW_KEYS = (
    "ts",
    "platform",
    "ms_played",
    "conn_country",
    "ip_addr",
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
    "episode_name",
    "episode_show_name",
    "spotify_episode_uri",
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
    "offline_timestamp",
    "incognito_mode",
)
LEGACY_KEYS = (
    "ts",
    "username",
    "platform",
    "ms_played",
    "conn_country",
    "ip_addr_decrypted",
    "user_agent_decrypted",
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
    "episode_name",
    "episode_show_name",
    "spotify_episode_uri",
    "reason_start",
    "reason_end",
    "shuffle",
    "skipped",
    "offline",
    "offline_timestamp",
    "incognito_mode",
)
PLAYLIST_NAMES = [
    "Chill Vibes",
    "Workout",
    "Road Trip",
    "Favourites",
    "Late Night",
    "Focus",
    "Party",
    "Throwbacks",
    "Sunday Morning",
    "Gym",
    "Rainy Days",
    "Summer 2025",
    "Sing Along",
    "Deep Cuts",
]



class Writer:
    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0

    def write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files += 1
        self.bytes += len(data)


def _ts_strings(end_s: np.ndarray) -> np.ndarray:
    s = np.datetime_as_string(np.floor(end_s).astype(np.int64).astype("datetime64[s]"), unit="s")
    return np.char.add(s, "Z")


def _year_label(ts: list[str]) -> str:
    y0, y1 = min(t[:4] for t in ts), max(t[:4] for t in ts)
    return y0 if y0 == y1 else f"{y0}-{y1}"


def _account_json(rows: list[tuple], keys: tuple[str, ...]) -> bytes:
    """Spotify account-data style: 2-space indent and ``" : "`` separators."""
    if not rows:
        return b"[ ]"
    data = orjson.dumps([dict(zip(keys, r, strict=True)) for r in rows], option=orjson.OPT_INDENT_2)
    # a newline inside a value is escaped, so "\n    \"key\": " only occurs at the start of a field
    return _ACCOUNT_SEP.sub(rb'\n    "\1" : ', data)


_ACCOUNT_SEP = re.compile(rb'\n    "(endTime|artistName|trackName|msPlayed|podcastName|episodeName)": ')


class CatLookup:
    def __init__(self, cat: Catalog) -> None:
        t = cat.tracks
        self.t_name = t["track_name"].to_numpy(object)
        self.t_artist = np.array([s.split(";", 1)[0] for s in t["artist_names"]], dtype=object)
        self.t_artist_id = np.array([s.split(";", 1)[0] for s in t["artist_ids"]], dtype=object)
        self.t_album = t["album_name"].to_numpy(object)
        self.t_album_id = t["album_id"].to_numpy(object)
        self.t_uri = np.array(["spotify:track:" + x for x in t["track_id"]], dtype=object)
        e = cat.episodes
        self.e_name = e["episode_name"].to_numpy(object)
        show_names = cat.shows["show_name"].to_numpy(object)
        self.e_show = show_names[cat.episode_show]
        self.e_uri = np.array(["spotify:episode:" + x for x in e["episode_id"]], dtype=object)
        self.s_name = show_names
        self.s_pub = cat.shows["publisher"].to_numpy(object)
        self.s_uri = np.array(["spotify:show:" + x for x in cat.shows["show_id"]], dtype=object)
        self.a_name = cat.artists["artist_name"].to_numpy(object)
        self.a_uri = np.array(["spotify:artist:" + x for x in cat.artists["artist_id"]], dtype=object)
        self.alb_uri = {a: "spotify:album:" + a for a in cat.albums["album_id"]}


def play_columns(pl: Plays, lk: CatLookup) -> dict[str, np.ndarray]:
    """The catalogue side of each play (ts, names, URIs), shared by the export writers and live mode."""
    ep = pl.is_episode
    ti = np.where(ep, 0, pl.item)
    ei = np.where(ep, pl.item, 0)
    none = np.full(len(ep), None, dtype=object)
    return {
        "ts": _ts_strings(pl.end_s).astype(object),
        "track": np.where(ep, none, lk.t_name[ti]),
        "artist": np.where(ep, none, lk.t_artist[ti]),
        "album": np.where(ep, none, lk.t_album[ti]),
        "turi": np.where(ep, none, lk.t_uri[ti]),
        "ename": np.where(ep, lk.e_name[ei], none),
        "eshow": np.where(ep, lk.e_show[ei], none),
        "euri": np.where(ep, lk.e_uri[ei], none),
    }


def _quirk_order(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order with a few local swaps and ~0.1 % exact duplicates; returns (order, is_duplicate)."""
    idx = np.arange(n)
    sw = np.flatnonzero(rng.random(max(n - 1, 0)) < SWAP_P)
    last = -2
    for i in sw.tolist():
        if i > last + 1:
            idx[i], idx[i + 1] = idx[i + 1], idx[i]
            last = i
    dup = rng.random(n) < DUPLICATE_P
    reps = np.where(dup, 2, 1)
    order = np.repeat(idx, reps[idx])
    is_dup = np.zeros(len(order), bool)
    is_dup[1:] = order[1:] == order[:-1]
    return order, is_dup


def write_listener(
    out: Path,
    lis: Listener,
    pl: Plays,
    lk: CatLookup,
    cat: Catalog,
    seed: int,
    legacy: bool,
    account_data: bool,
    window_start: float,
    w: Writer,
) -> dict:
    rng = np.random.default_rng([seed, 303, lis.index])
    root = out / "exports" / lis.handle
    n = len(pl.ms)
    c = play_columns(pl, lk)
    order, is_dup = _quirk_order(rng, n)
    ts, plat = c["ts"], pl.platform
    rs, re_ = pl.reason_start, pl.reason_end
    cc, ip = pl.conn_country, pl.ip
    if legacy:
        skipped = np.where(rng.random(n) < 0.85, None, pl.skipped.astype(object))
        off = np.where(
            pl.offline_ts < 0, None, (pl.offline_ts * 1000 + rng.integers(0, 1000, n)).astype(object)
        )
        digest = hashlib.sha256(f"{seed}:{lis.index}".encode()).hexdigest()[:22]
        username = "user" + digest
        lp = lis.legacy_platform  # type: ignore[attr-defined]
        plat = np.array([lp[p] for p in plat.tolist()], dtype=object)
        ua = np.where(
            pl.platform == "web_player",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/109.0.0.0 Safari/537.36",
            "unknown",
        ).astype(object)
        # endsong files are not time ordered
        order = order[rng.permutation(len(order))]
        is_dup = np.zeros(len(order), bool)
        seen = np.zeros(n, bool)
        for j, o in enumerate(order.tolist()):
            if seen[o]:
                is_dup[j] = True
            seen[o] = True
        cols = [
            ts,
            None,
            plat,
            pl.ms,
            cc,
            ip,
            ua,
            c["track"],
            c["artist"],
            c["album"],
            c["turi"],
            c["ename"],
            c["eshow"],
            c["euri"],
            rs,
            re_,
            pl.shuffle,
            skipped,
            pl.offline,
            off,
            pl.incognito,
        ]
        lists = [
            [username] * len(order) if x is None else np.asarray(x, dtype=object)[order].tolist()
            for x in cols
        ]
        rows = [dict(zip(LEGACY_KEYS, vals, strict=True)) for vals in zip(*lists, strict=True)]
        for k, start in enumerate(range(0, max(len(rows), 1), ROWS_PER_LEGACY_FILE)):
            w.write(
                root / LEGACY_DIR / f"endsong_{k}.json",
                orjson.dumps(rows[start : start + ROWS_PER_LEGACY_FILE]),
            )
    else:
        skipped = np.where(rng.random(n) < SKIPPED_NULL_P, None, pl.skipped.astype(object))
        off = np.where(pl.offline_ts < 0, None, pl.offline_ts.astype(object))
        none = [None] * len(order)
        cols = [
            ts,
            plat,
            pl.ms,
            cc,
            ip,
            c["track"],
            c["artist"],
            c["album"],
            c["turi"],
            c["ename"],
            c["eshow"],
            c["euri"],
            None,
            None,
            None,
            None,
            rs,
            re_,
            pl.shuffle,
            skipped,
            pl.offline,
            off,
            pl.incognito,
        ]
        lists = [none if x is None else np.asarray(x, dtype=object)[order].tolist() for x in cols]
        rows = [dict(zip(NEW_KEYS, vals, strict=True)) for vals in zip(*lists, strict=True)]
        for k, start in enumerate(range(0, max(len(rows), 1), ROWS_PER_AUDIO_FILE)):
            chunk = rows[start : start + ROWS_PER_AUDIO_FILE]
            label = _year_label([r["ts"] for r in chunk]) if chunk else str(dt.date.fromtimestamp(0).year)
            w.write(
                root / EXTENDED_DIR / f"Streaming_History_Audio_{label}_{k}.json",
                orjson.dumps(chunk, option=orjson.OPT_INDENT_2),
            )
    del rows, lists
    ep_o = pl.is_episode[order]
    stats = {
        "type": TYPES[lis.type_index].name,
        "format": "legacy" if legacy else "extended",
        "rows": len(order),
        "track_plays": int((~ep_o).sum()),
        "episode_plays": int(ep_o.sum()),
        "duplicates": int(is_dup.sum()),
        "ms_played": int(pl.ms[order].sum()),
        "video_plays": 0,
        "video_ms_played": 0,
        "account_music_rows": 0,
        "account_podcast_rows": 0,
    }
    if not legacy:
        _write_video(root, lis, pl, lk, rng, stats, w)
    if account_data:
        _write_account(root, lis, pl, c, lk, cat, rng, window_start, stats, w)
    return stats


def _write_video(
    root: Path, lis: Listener, pl: Plays, lk: CatLookup, rng: np.random.Generator, stats: dict, w: Writer
) -> None:
    T = TYPES[lis.type_index]
    if len(pl.ms) == 0 or rng.random() >= T.video_p:
        return
    nv = int(rng.integers(1, 16))
    base = np.sort(rng.choice(pl.end_s, nv)) + rng.integers(3600, 20 * 3600, nv)
    ep = rng.integers(0, len(lk.e_name), nv)
    ms = rng.integers(0, 1_800_000, nv)
    ts = _ts_strings(np.sort(base)).tolist()
    plat = pl.platform[0]
    rows = []
    for t, e, m in zip(ts, ep.tolist(), ms.tolist(), strict=True):
        r = dict.fromkeys(NEW_KEYS)
        r.update(
            ts=t,
            platform=plat,
            ms_played=m,
            conn_country=lis.country,
            ip_addr=pl.ip[0],
            episode_name=lk.e_name[e],
            episode_show_name=lk.e_show[e],
            spotify_episode_uri=lk.e_uri[e],
            reason_start="clickrow",
            reason_end="endplay",
            shuffle=False,
            skipped=m < 30_000,
            offline=False,
            offline_timestamp=int(base.min()) - 600,
            incognito_mode=False,
        )
        rows.append(r)
    w.write(
        root / EXTENDED_DIR / f"Streaming_History_Video_{_year_label(ts)}.json",
        orjson.dumps(rows, option=orjson.OPT_INDENT_2),
    )
    stats["video_plays"] = nv
    stats["video_ms_played"] = int(ms.sum())


def _write_account(
    root: Path,
    lis: Listener,
    pl: Plays,
    c: dict,
    lk: CatLookup,
    cat: Catalog,
    rng: np.random.Generator,
    window_start: float,
    stats: dict,
    w: Writer,
) -> None:
    d = root / ACCOUNT_DIR
    inwin = np.floor(pl.end_s) >= window_start
    end_time = [t[:10] + " " + t[11:16] for t in c["ts"].tolist()]
    music = np.flatnonzero(inwin & ~pl.is_episode).tolist()
    pods = np.flatnonzero(inwin & pl.is_episode).tolist()
    ms = pl.ms.tolist()
    mrows = [(end_time[i], c["artist"][i], c["track"][i], ms[i]) for i in music]
    for k, s in enumerate(range(0, max(len(mrows), 1), ROWS_PER_ACCOUNT_FILE)):
        w.write(
            d / f"StreamingHistory_music_{k}.json",
            _account_json(
                mrows[s : s + ROWS_PER_ACCOUNT_FILE], ("endTime", "artistName", "trackName", "msPlayed")
            ),
        )
    prows = [(end_time[i], c["eshow"][i], c["ename"][i], ms[i]) for i in pods]
    for k, s in enumerate(range(0, len(prows), ROWS_PER_ACCOUNT_FILE)):
        w.write(
            d / f"StreamingHistory_podcast_{k}.json",
            _account_json(
                prows[s : s + ROWS_PER_ACCOUNT_FILE], ("endTime", "podcastName", "episodeName", "msPlayed")
            ),
        )
    stats["account_music_rows"] = len(mrows)
    stats["account_podcast_rows"] = len(prows)

    # library: most played tracks, their albums, favourite artists, shows/episodes heard
    tr = pl.item[~pl.is_episode]
    uniq, cnt = np.unique(tr, return_counts=True)
    top = uniq[np.lexsort((uniq, -cnt))]
    n_top = int(min(len(top), max(30, min(300, 30 + len(tr) // 25))))
    top = top[:n_top]
    tracks = [
        {"artist": lk.t_artist[t], "album": lk.t_album[t], "track": lk.t_name[t], "uri": lk.t_uri[t]}
        for t in top.tolist()
    ]
    albums, seen = [], set()
    for t in top.tolist():
        aid = lk.t_album_id[t]
        if aid not in seen and len(albums) < 30:
            seen.add(aid)
            albums.append({"artist": lk.t_artist[t], "album": lk.t_album[t], "uri": lk.alb_uri[aid]})
    eps = np.unique(pl.item[pl.is_episode])
    shows = np.unique(cat.episode_show[eps]) if len(eps) else np.zeros(0, np.int64)
    fav = np.sort(lis.fav_artists)  # type: ignore[attr-defined]
    lib = {
        "tracks": tracks,
        "albums": albums,
        "shows": [
            {"name": lk.s_name[s], "publisher": lk.s_pub[s], "uri": lk.s_uri[s]} for s in shows.tolist()
        ],
        "episodes": [
            {"name": lk.e_name[e], "show": lk.e_show[e], "uri": lk.e_uri[e]} for e in eps[:10].tolist()
        ],
        "bannedTracks": [],
        "artists": [{"name": lk.a_name[a], "uri": lk.a_uri[a]} for a in fav.tolist()],
        "bannedArtists": [],
        "other": [],
    }
    w.write(d / "YourLibrary.json", orjson.dumps(lib, option=orjson.OPT_INDENT_2))

    # playlists from the favourite / most played tracks
    first_day = np.datetime64(int(np.floor(pl.end_s.min())) if len(pl.end_s) else 0, "s").astype(
        "datetime64[D]"
    )
    last_day = np.datetime64(int(np.floor(pl.end_s.max())) if len(pl.end_s) else 0, "s").astype(
        "datetime64[D]"
    )
    span = max(int((last_day - first_day).astype(int)), 1)
    names = rng.choice(len(PLAYLIST_NAMES), size=int(rng.integers(1, 7)), replace=False)
    playlists = []
    for nm in names.tolist():
        k = int(min(len(top), rng.integers(10, 51)))
        pick = rng.choice(top, size=k, replace=False) if k else np.zeros(0, np.int64)
        added = (
            np.sort(first_day + rng.integers(0, span + 1, k).astype("timedelta64[D]")).astype(str).tolist()
        )
        items = [
            {
                "track": {
                    "trackName": lk.t_name[t],
                    "artistName": lk.t_artist[t],
                    "albumName": lk.t_album[t],
                    "trackUri": lk.t_uri[t],
                },
                "episode": None,
                "audiobook": None,
                "localTrack": None,
                "addedDate": a,
            }
            for t, a in zip(pick.tolist(), added, strict=True)
        ]
        playlists.append(
            {
                "name": PLAYLIST_NAMES[nm],
                "lastModifiedDate": added[-1] if added else str(last_day),
                "items": items,
                "description": None if rng.random() < 0.7 else f"my {PLAYLIST_NAMES[nm].lower()} mix",
                "numberOfFollowers": int(rng.poisson(0.3)),
            }
        )
    w.write(d / "Playlist1.json", orjson.dumps({"playlists": playlists}, option=orjson.OPT_INDENT_2))
