"""Planted listener types and the per-listener event simulation (vectorised with numpy)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from tunelake.synthetic.catalog_gen import GENRE_PARAMS, GENRES, GIDX, Catalog


def _hours(*peaks: tuple[float, float, float], base: float = 0.02) -> np.ndarray:
    """24 local-hour weights from (centre, width, height) bumps (circular)."""
    h = np.arange(24)
    w = np.full(24, base)
    for c, s, a in peaks:
        d = np.minimum(np.abs(h - c), 24 - np.abs(h - c))
        w = w + a * np.exp(-0.5 * (d / s) ** 2)
    return w / w.sum()


@dataclass(frozen=True)
class ListenerType:
    name: str
    active_p: float  # probability a (neutral) day is active
    weekday_mult: tuple[float, ...]  # Mon..Sun multiplier on active_p
    sessions_extra: float  # extra sessions per active day (Poisson)
    tracks_per_session: float
    hours_weekday: np.ndarray
    hours_weekend: np.ndarray
    genres: dict[str, float]
    skip_p: float
    partial_p: float
    shuffle_p: float
    novelty: float  # share of plays that are discoveries
    fav_share: float  # share of plays from the favourite set
    alpha: float  # mainstreamness exponent on popularity weight
    era: tuple[float, float] | None  # preferred release-year centre, sd
    podcast_p: float  # probability that a session is a podcast session
    platforms: dict[str, float]
    n_fav: tuple[int, int]
    offline_p: float = 0.02
    video_p: float = 0.15


TYPES: list[ListenerType] = [
    ListenerType(
        "night_owl_explorer",
        0.75,
        (1, 1, 1, 1, 1.1, 1.1, 1),
        0.7,
        16,
        _hours((0.5, 1.8, 1.0), (23, 1.5, 0.6)),
        _hours((1.5, 2.0, 1.0)),
        {"ambient": 3, "techno": 3, "house": 1.5, "edm": 0.7, "lo-fi": 0.8},
        0.18,
        0.06,
        0.35,
        0.60,
        0.12,
        0.25,
        (2015, 8),
        0.03,
        {"windows": 0.45, "osx": 0.25, "android": 0.3},
        (8, 20),
    ),
    ListenerType(
        "commuter_mainstream",
        0.85,
        (1.1, 1.1, 1.1, 1.1, 1.05, 0.5, 0.45),
        1.0,
        13,
        _hours((8, 0.8, 1.0), (18, 1.0, 1.0), base=0.01),
        _hours((13, 3, 0.5)),
        {"pop": 4, "hip hop": 2, "rap": 1.5, "r&b": 1.2, "k-pop": 0.6},
        0.25,
        0.06,
        0.7,
        0.15,
        0.35,
        1.35,
        (2018, 5),
        0.05,
        {"ios": 0.55, "android": 0.45},
        (10, 25),
    ),
    ListenerType(
        "weekend_party",
        0.8,
        (0.15, 0.15, 0.2, 0.3, 1.3, 1.3, 0.35),
        0.3,
        30,
        _hours((21, 2.0, 1.0)),
        _hours((23, 2.0, 1.0), (1.5, 1.5, 0.6)),
        {"edm": 3, "latin": 3, "hip hop": 2, "house": 1.5, "pop": 0.5},
        0.48,
        0.04,
        0.92,
        0.30,
        0.2,
        1.0,
        (2018, 5),
        0.0,
        {"android": 0.4, "ios": 0.35, "cast_to_device": 0.25},
        (10, 25),
    ),
    ListenerType(
        "focus_worker",
        0.9,
        (1.2, 1.2, 1.2, 1.2, 1.15, 0.15, 0.1),
        0.5,
        38,
        _hours((10.5, 1.8, 1.0), (14.5, 1.8, 1.0), base=0.004),
        _hours((11, 2, 1.0)),
        {"classical": 3.5, "lo-fi": 3, "jazz": 2.5, "ambient": 0.4},
        0.03,
        0.03,
        0.4,
        0.22,
        0.35,
        0.7,
        None,
        0.02,
        {"windows": 0.55, "osx": 0.35, "web_player": 0.1},
        (12, 30),
    ),
    ListenerType(
        "casual_skipper",
        0.32,
        (1, 1, 1, 1, 1, 1.2, 1.2),
        0.2,
        8,
        _hours((15, 3.0, 1.0), (20, 2.0, 0.8)),
        _hours((16, 3.5, 1.0)),
        {"pop": 4, "k-pop": 2, "latin": 1.2, "indie": 0.8},
        0.68,
        0.08,
        0.95,
        0.35,
        0.15,
        1.6,
        (2020, 4),
        0.02,
        {"web_player": 0.5, "ios": 0.5},
        (4, 10),
    ),
    ListenerType(
        "nostalgic_rock",
        0.75,
        (0.9, 0.9, 0.9, 0.9, 1.1, 1.2, 1.2),
        0.5,
        18,
        _hours((20.5, 1.8, 1.0), base=0.01),
        _hours((17, 3.0, 1.0)),
        {"rock": 4, "metal": 2, "folk": 1.5, "blues": 1.0, "country": 0.7},
        0.10,
        0.05,
        0.2,
        0.05,
        0.65,
        0.9,
        (1982, 10),
        0.02,
        {"windows": 0.5, "android": 0.5},
        (8, 18),
    ),
    ListenerType(
        "podcast_commuter",
        0.8,
        (1.1, 1.1, 1.1, 1.1, 1.0, 0.5, 0.5),
        1.2,
        12,
        _hours((7.5, 0.9, 1.0), (17.5, 1.0, 0.9), base=0.01),
        _hours((10, 2.5, 1.0)),
        {"indie": 3, "folk": 2, "soul": 2, "r&b": 0.5},
        0.15,
        0.08,
        0.3,
        0.2,
        0.35,
        0.9,
        (2010, 12),
        0.6,
        {"ios": 0.6, "android": 0.3, "osx": 0.1},
        (6, 14),
        0.05,
        0.3,
    ),
]
TYPE_NAMES = [t.name for t in TYPES]

COUNTRIES = [
    ("US", "America/New_York"),
    ("US", "America/Los_Angeles"),
    ("GB", "Europe/London"),
    ("DE", "Europe/Berlin"),
    ("SE", "Europe/Stockholm"),
    ("BR", "America/Sao_Paulo"),
    ("IN", "Asia/Kolkata"),
    ("JP", "Asia/Tokyo"),
    ("FR", "Europe/Paris"),
    ("MX", "America/Mexico_City"),
    ("AU", "Australia/Sydney"),
    ("CA", "America/Toronto"),
]
COUNTRY_W = np.array([3, 2, 2, 2, 1, 1.5, 1.5, 1, 1, 1, 0.8, 1.0])
LEGACY_PLATFORM = {
    "android": [
        "Android OS 12 API 31 (samsung, SM-G781U)",
        "Android OS 13 API 33 (Google, Pixel 7)",
        "Android OS 11 API 30 (OnePlus, IN2013)",
    ],
    "ios": ["iOS 16.1.1 (iPhone14,5)", "iOS 15.6.1 (iPhone13,2)"],
    "windows": ["Windows 10 (10.0.19044; x64)", "Windows 10 (10.0.22621; x64; AppX)"],
    "osx": ["OS X 12.6.1 [arm 2]", "OS X 10.15.7 [x86 8]"],
    "web_player": ["WebPlayer (websocket RFC6455)"],
    "cast_to_device": ["Partner google cast_tv;Chromecast;;"],
}
REASON_END = np.array(
    [
        "trackdone",
        "fwdbtn",
        "backbtn",
        "endplay",
        "logout",
        "unexpected-exit-while-paused",
        "unexpected-exit",
    ],
    dtype=object,
)
# reason_start that follows each reason_end
NEXT_START = np.array(
    ["trackdone", "fwdbtn", "backbtn", "clickrow", "appload", "appload", "appload"], dtype=object
)
FIRST_START = np.array(["clickrow", "playbtn", "appload", "remote"], dtype=object)


@dataclass
class Listener:
    index: int
    handle: str
    type_index: int
    country: str
    timezone: str
    params: dict = field(default_factory=dict)


@dataclass
class Plays:
    """Per-play columns (already in time order)."""

    end_s: np.ndarray  # float epoch seconds (end of playback)
    ms: np.ndarray
    is_episode: np.ndarray
    item: np.ndarray  # track index or episode index
    reason_start: np.ndarray
    reason_end: np.ndarray
    shuffle: np.ndarray
    skipped: np.ndarray  # bool
    offline: np.ndarray
    offline_ts: np.ndarray  # epoch seconds (int); -1 = null
    incognito: np.ndarray
    platform: np.ndarray  # platform key (object)
    conn_country: np.ndarray
    ip: np.ndarray
    session: np.ndarray


def type_for(index: int, seed: int) -> int:
    """Balanced, seed-rotated assignment: every block of len(TYPES) listeners has one of each type."""
    k = len(TYPES)
    block = np.random.default_rng([seed, 31, index // k]).permutation(k)
    return int(block[index % k])


def make_listener(index: int, seed: int) -> Listener:
    rng = np.random.default_rng([seed, 101, index])
    ti = type_for(index, seed)
    c = COUNTRIES[int(rng.choice(len(COUNTRIES), p=COUNTRY_W / COUNTRY_W.sum()))]
    return Listener(index, f"listener-{index + 1:04d}", ti, c[0], c[1])


def _norm(d: dict[str, float]) -> tuple[list[str], np.ndarray]:
    keys = list(d)
    w = np.array([d[k] for k in keys], float)
    return keys, w / w.sum()


@dataclass
class Taste:
    """What a listener likes: the jittered type parameters, the discovery pool and the favourites.

    Kept apart from the day-by-day simulation so that live mode (the fake server's simulated time after the world's
    end) can go on simulating new days from the very taste the exports were written from.
    """

    params: dict
    pool: np.ndarray  # track indexes the listener may discover
    pool_w: np.ndarray  # their discovery weights (sum 1)
    fav_tracks: np.ndarray
    fav_w: np.ndarray


def simulate(lis: Listener, cat: Catalog, seed: int, start: dt.date, days: int,
             kind: ListenerType | None = None, stream: tuple[int, ...] = ()) -> Plays:
    """All plays of one listener between start and start + days (local dates).

    ``kind`` overrides the listener's planted type (the hard world passes a blend) and ``stream`` extends the
    random stream, so one listener can be simulated period by period; the defaults give the default world."""
    rng = np.random.default_rng([seed, 202, lis.index, *stream])
    return simulate_days(lis, taste(lis, cat, rng, kind), cat, rng, start, days, kind=kind)


def taste(lis: Listener, cat: Catalog, rng: np.random.Generator, kind: ListenerType | None = None) -> Taste:
    """The listener's taste, drawn from `rng` (seeded `[seed, 202, index]`); sets `lis.params`/`lis.fav_artists`.
    ``kind``: a type other than the planted one (the hard world's blends)."""
    T = kind or TYPES[lis.type_index]
    jit = lambda s=0.15: float(rng.lognormal(0, s))  # noqa: E731
    p = {
        "active_p": min(0.98, T.active_p * jit(0.12)),
        "sessions_extra": T.sessions_extra * jit(0.2),
        "tracks_per_session": T.tracks_per_session * jit(0.15),
        "skip_p": float(np.clip(T.skip_p * jit(0.15), 0.01, 0.9)),
        "partial_p": T.partial_p,
        "shuffle_p": float(np.clip(T.shuffle_p + rng.normal(0, 0.05), 0.02, 0.98)),
        "novelty": float(np.clip(T.novelty * jit(0.15), 0.01, 0.9)),
        "fav_share": T.fav_share,
        "alpha": T.alpha + float(rng.normal(0, 0.08)),
        "podcast_p": float(np.clip(T.podcast_p * jit(0.2), 0, 0.9)),
        "hour_shift": int(rng.integers(-1, 2)),
    }
    # personal genre taste (Dirichlet around the type's mix)
    gkeys, gw = _norm(T.genres)
    gw = rng.dirichlet(gw * 40)
    p["genres"] = ";".join(f"{g}:{w:.3f}" for g, w in zip(gkeys, gw, strict=True))
    gweight = np.zeros(len(GENRES))
    gweight[[GIDX[g] for g in gkeys]] = gw
    # candidate pool and discovery weights
    tw = gweight[cat.track_genre]
    pool = np.flatnonzero(tw > 0)
    w = tw[pool] * cat.track_weight[pool] ** p["alpha"]
    if T.era:
        w = w * np.exp(-0.5 * ((cat.track_year[pool] - T.era[0]) / T.era[1]) ** 2) + w * 0.02
    w = w / w.sum()
    # favourite artists (weighted by mainstreamness) and their top tracks
    art_pool = np.unique(cat.track_artist[pool])
    aw = gweight[cat.artist_genre[art_pool]] * cat.artist_weight[art_pool] ** max(p["alpha"], 0.3)
    n_fav = int(rng.integers(T.n_fav[0], T.n_fav[1] + 1))
    fav_art = rng.choice(art_pool, size=min(n_fav, len(art_pool)), replace=False, p=aw / aw.sum())
    fav_tracks = pool[np.isin(cat.track_artist[pool], fav_art)]
    fw = cat.track_weight[fav_tracks] ** 0.5
    fw = fw / fw.sum()
    p["n_favourite_artists"] = len(fav_art)
    lis.params = p
    lis.fav_artists = fav_art  # type: ignore[attr-defined]
    return Taste(p, pool, w, fav_tracks, fw)


def simulate_days(
    lis: Listener,
    t: Taste,
    cat: Catalog,
    rng: np.random.Generator,
    start: dt.date,
    days: int,
    not_before_s: float | None = None,
    kind: ListenerType | None = None,
) -> Plays:
    """The plays of `days` local days from `start`, drawn from `rng`; no session starts within 31 minutes of
    `not_before_s` (the end of the listener's previous play), as no two sessions overlap inside one call."""
    T = kind or TYPES[lis.type_index]
    p, pool, w, fav_tracks, fw = t.params, t.pool, t.pool_w, t.fav_tracks, t.fav_w

    # ---- days and sessions ----
    dates = np.arange(np.datetime64(start), np.datetime64(start) + np.timedelta64(days, "D"))
    wd = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # Monday = 0
    mult = np.array(T.weekday_mult)[wd]
    active = rng.random(days) < np.clip(p["active_p"] * mult, 0, 0.99)
    n_sess = np.where(active, 1 + rng.poisson(p["sessions_extra"] * np.sqrt(mult)), 0)
    s_day = np.repeat(np.arange(days), n_sess)
    ns = len(s_day)
    weekend = wd[s_day] >= 5
    hw = np.roll(T.hours_weekday, p["hour_shift"])
    he = np.roll(T.hours_weekend, p["hour_shift"])
    hour = np.where(weekend, rng.choice(24, ns, p=he), rng.choice(24, ns, p=hw))
    sec = rng.integers(0, 3600, ns)
    podcast_s = rng.random(ns) < p["podcast_p"]
    tps = p["tracks_per_session"]
    n_items = np.where(
        podcast_s, 1 + rng.poisson(0.7, ns), np.maximum(1, rng.negative_binomial(3, 3 / (3 + tps), ns))
    )
    # local -> UTC (zoneinfo; DST aware)
    tz = ZoneInfo(lis.timezone)
    utc = dt.UTC
    start_utc = np.empty(ns, float)
    base = dt.datetime(start.year, start.month, start.day)
    for i, (d, h, s) in enumerate(zip(s_day.tolist(), hour.tolist(), sec.tolist(), strict=True)):
        local = (base + dt.timedelta(days=d, hours=h, seconds=s)).replace(tzinfo=tz)
        start_utc[i] = local.astimezone(utc).timestamp()
    order = np.argsort(start_utc, kind="stable")
    start_utc, podcast_s, n_items = start_utc[order], podcast_s[order], n_items[order]

    # ---- items ----
    N = int(n_items.sum())
    sess = np.repeat(np.arange(ns), n_items)
    first = np.zeros(N, bool)
    first[np.cumsum(n_items) - n_items] = True
    last = np.zeros(N, bool)
    last[np.cumsum(n_items) - 1] = True
    is_ep = podcast_s[sess]
    item = np.zeros(N, np.int64)
    # music: favourites / repeats of earlier discoveries / new discoveries
    mus = np.flatnonzero(~is_ep)
    u = rng.random(len(mus))
    src = np.where(u < p["novelty"], 2, np.where(u < p["novelty"] + p["fav_share"], 0, 1))
    disc = rng.choice(pool, size=len(mus), p=w)
    favp = rng.choice(fav_tracks, size=len(mus), p=fw)
    n_disc_before = np.cumsum(src == 2) - (src == 2)
    disc_pos = np.flatnonzero(src == 2)
    rep_idx = (rng.random(len(mus)) * n_disc_before).astype(np.int64)
    if len(disc_pos):
        rep = np.where(n_disc_before > 0, disc[disc_pos[np.minimum(rep_idx, len(disc_pos) - 1)]], favp)
    else:
        rep = favp
    item[mus] = np.where(src == 2, disc, np.where(src == 0, favp, rep))
    # episodes: a few favourite shows, walk through their episodes
    eps = np.flatnonzero(is_ep)
    if len(eps):
        nshow = cat.episode_show.max() + 1
        fav_shows = rng.choice(nshow, size=int(rng.integers(1, 5)), replace=False)
        show = rng.choice(fav_shows, size=len(eps))
        ep_of_show = [np.flatnonzero(cat.episode_show == s) for s in range(nshow)]
        pick = rng.random(len(eps))
        item[eps] = [
            int(ep_of_show[s][int(x * len(ep_of_show[s]))])
            for s, x in zip(show.tolist(), pick.tolist(), strict=True)
        ]
    dur = np.where(
        is_ep, cat.episode_duration[np.where(is_ep, item, 0)], cat.track_duration[np.where(is_ep, 0, item)]
    )

    # ---- outcomes ----
    u = rng.random(N)
    skip_p = np.where(is_ep, p["skip_p"] * 0.3, p["skip_p"])
    part_p = np.where(is_ep, 0.45, p["partial_p"])
    outcome = np.where(
        u < 0.004, 3, np.where(u < 0.004 + skip_p, 1, np.where(u < 0.004 + skip_p + part_p, 2, 0))
    )
    # the last item of a session often ends by the user stopping or leaving the app
    outcome = np.where(last & (outcome == 0) & (rng.random(N) < 0.5), 2, outcome)
    skip_ms = np.minimum(np.round(rng.lognormal(np.log(9000), 0.8, N)), np.minimum(29_000, dur - 1))
    ms = np.select(
        [outcome == 0, outcome == 1, outcome == 2],
        [dur - rng.integers(0, 900, N), skip_ms, np.round(dur * rng.uniform(0.15, 0.95, N))],
        0,
    ).astype(np.int64)
    ms = np.maximum(ms, 0)
    re_idx = np.select(
        [outcome == 0, outcome == 1, outcome == 2],
        [0, np.where(rng.random(N) < 0.92, 1, 2), rng.choice([3, 4, 5, 6], N, p=[0.55, 0.25, 0.14, 0.06])],
        3,
    )
    # mid-session stops are clicks to another track, not logouts
    re_idx = np.where((outcome == 2) & ~last & (re_idx >= 4), 3, re_idx)
    reason_end = REASON_END[re_idx]
    prev_end = np.empty(N, np.int64)
    prev_end[1:] = re_idx[:-1]
    prev_end[:1] = 0  # (an empty day has no first play)
    reason_start = np.where(
        first, FIRST_START[rng.choice(4, N, p=[0.45, 0.3, 0.2, 0.05])], NEXT_START[prev_end]
    )
    skipped = outcome == 1

    # ---- timing: consecutive within a session, sessions never overlap ----
    gap = rng.integers(0, 2500, N).astype(float) / 1000.0
    step = ms / 1000.0 + gap
    sess_len = np.add.reduceat(step, np.cumsum(n_items) - n_items) if N else np.zeros(0)
    s0 = start_utc.copy()
    prev = -1e18 if not_before_s is None else not_before_s
    for i in range(ns):
        if s0[i] < prev + 1860:
            s0[i] = prev + 1860 + (s0[i] % 600)
        prev = s0[i] + sess_len[i]
    within = np.cumsum(step) - np.repeat(np.cumsum(sess_len) - sess_len, n_items)
    end_s = s0[sess] + within - gap

    # ---- session-level context ----
    pkeys, pw = _norm(T.platforms)
    n_dev = int(rng.integers(1, min(3, len(pkeys)) + 1))
    devs = rng.choice(len(pkeys), size=n_dev, replace=False, p=pw)
    dw = pw[devs] / pw[devs].sum()
    s_plat = np.array(pkeys, dtype=object)[devs][rng.choice(n_dev, ns, p=dw)]
    s_shuffle = rng.random(ns) < p["shuffle_p"]
    s_off = rng.random(ns) < T.offline_p * (2 if "android" in pkeys or "ios" in pkeys else 0.5)
    s_incog = rng.random(ns) < 0.003
    ips = [f"198.51.100.{int(x)}" for x in rng.integers(1, 255, 3)] + [
        f"2001:db8::{int(x):x}" for x in rng.integers(1, 4096, 2)
    ]
    s_ip = np.array(ips, dtype=object)[rng.choice(5, ns, p=[0.5, 0.2, 0.1, 0.15, 0.05])]
    travel = COUNTRIES[int(rng.integers(0, len(COUNTRIES)))][0]
    s_cc = np.where(rng.random(ns) < 0.01, travel, lis.country).astype(object)
    off_ts = np.where(s_off, s0 - rng.integers(3600, 5 * 86400, ns), s0 - rng.integers(0, 40_000, ns))
    off_ts = np.floor(off_ts).astype(np.int64)[sess]
    off_ts = np.where(rng.random(N) < 0.02, -1, off_ts)
    p["platforms"] = ";".join(str(pkeys[d]) for d in devs)
    lis.legacy_platform = {
        k: LEGACY_PLATFORM[k][int(rng.integers(0, len(LEGACY_PLATFORM[k])))]  # type: ignore
        for k in pkeys
    }
    return Plays(
        end_s,
        ms,
        is_ep,
        item,
        reason_start,
        reason_end,
        s_shuffle[sess],
        skipped,
        s_off[sess],
        off_ts,
        s_incog[sess],
        s_plat[sess],
        s_cc[sess],
        s_ip[sess],
        sess,
    )


def era_centre(t: ListenerType) -> float:
    if t.era:
        return t.era[0]
    keys, w = _norm(t.genres)
    return float(sum(GENRE_PARAMS[k][10] * x for k, x in zip(keys, w, strict=True)))
