"""Deterministic synthetic music catalogue: artists, albums, tracks (with genre-dependent audio features),
podcast shows and episodes. Seeded from the world seed only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))

GENRES = [
    "pop",
    "rock",
    "hip hop",
    "rap",
    "r&b",
    "edm",
    "house",
    "techno",
    "indie",
    "folk",
    "jazz",
    "classical",
    "ambient",
    "lo-fi",
    "metal",
    "country",
    "latin",
    "k-pop",
    "soul",
    "blues",
]
GIDX = {g: i for i, g in enumerate(GENRES)}

# genre -> (danceability, energy, speechiness, acousticness, instrumentalness, valence, tempo, loudness,
#           duration_s, explicit_p, era_centre, era_sd, catalogue_weight)
GENRE_PARAMS: dict[str, tuple[float, ...]] = {
    "pop": (0.68, 0.68, 0.07, 0.20, 0.02, 0.55, 118, -6.0, 200, 0.15, 2015, 8, 1.6),
    "rock": (0.50, 0.78, 0.05, 0.12, 0.05, 0.50, 125, -6.0, 240, 0.04, 1985, 15, 1.3),
    "hip hop": (0.76, 0.62, 0.25, 0.15, 0.01, 0.50, 98, -6.5, 200, 0.70, 2012, 9, 1.2),
    "rap": (0.74, 0.65, 0.32, 0.12, 0.01, 0.45, 102, -6.5, 190, 0.80, 2016, 6, 1.0),
    "r&b": (0.66, 0.55, 0.10, 0.30, 0.02, 0.50, 100, -7.5, 210, 0.30, 2010, 10, 0.9),
    "edm": (0.68, 0.88, 0.07, 0.04, 0.45, 0.42, 128, -4.5, 210, 0.10, 2016, 5, 1.0),
    "house": (0.78, 0.80, 0.06, 0.05, 0.55, 0.55, 124, -6.0, 330, 0.05, 2012, 8, 0.8),
    "techno": (0.72, 0.82, 0.06, 0.03, 0.80, 0.30, 132, -8.0, 380, 0.02, 2012, 8, 0.7),
    "indie": (0.55, 0.60, 0.05, 0.30, 0.10, 0.45, 120, -7.5, 220, 0.05, 2013, 7, 1.0),
    "folk": (0.50, 0.38, 0.04, 0.70, 0.05, 0.45, 112, -10.0, 220, 0.02, 1985, 18, 0.8),
    "jazz": (0.55, 0.35, 0.06, 0.75, 0.50, 0.50, 110, -12.0, 320, 0.01, 1975, 20, 0.8),
    "classical": (0.28, 0.15, 0.04, 0.93, 0.88, 0.22, 100, -22.0, 380, 0.00, 1995, 20, 0.8),
    "ambient": (0.25, 0.12, 0.04, 0.85, 0.90, 0.12, 90, -24.0, 340, 0.00, 2015, 8, 0.7),
    "lo-fi": (0.68, 0.35, 0.08, 0.70, 0.85, 0.45, 85, -12.0, 150, 0.01, 2020, 3, 0.7),
    "metal": (0.40, 0.93, 0.08, 0.02, 0.12, 0.30, 135, -4.5, 270, 0.30, 1992, 12, 0.8),
    "country": (0.60, 0.65, 0.04, 0.30, 0.01, 0.60, 118, -6.0, 200, 0.03, 1998, 15, 0.8),
    "latin": (0.75, 0.75, 0.08, 0.20, 0.01, 0.70, 110, -5.0, 210, 0.25, 2017, 6, 1.0),
    "k-pop": (0.70, 0.78, 0.07, 0.12, 0.01, 0.60, 122, -4.0, 205, 0.05, 2019, 4, 0.8),
    "soul": (0.60, 0.50, 0.06, 0.40, 0.03, 0.60, 105, -9.0, 230, 0.02, 1978, 15, 0.7),
    "blues": (0.52, 0.52, 0.05, 0.50, 0.08, 0.55, 108, -9.0, 260, 0.02, 1975, 15, 0.6),
}
NEIGHBOURS = {
    "pop": ["k-pop", "r&b", "indie", "latin", "edm"],
    "rock": ["metal", "indie", "blues", "folk"],
    "hip hop": ["rap", "r&b", "pop"],
    "rap": ["hip hop", "r&b"],
    "r&b": ["soul", "hip hop", "pop"],
    "edm": ["house", "techno", "pop"],
    "house": ["edm", "techno"],
    "techno": ["house", "ambient", "edm"],
    "indie": ["rock", "folk", "pop"],
    "folk": ["indie", "country", "blues"],
    "jazz": ["soul", "blues", "lo-fi"],
    "classical": ["ambient", "jazz"],
    "ambient": ["classical", "lo-fi", "techno"],
    "lo-fi": ["jazz", "ambient"],
    "metal": ["rock"],
    "country": ["folk", "rock"],
    "latin": ["pop", "hip hop"],
    "k-pop": ["pop", "r&b"],
    "soul": ["r&b", "jazz", "blues"],
    "blues": ["rock", "soul", "jazz"],
}

_SYL = [
    "ka",
    "lo",
    "mi",
    "ra",
    "ven",
    "to",
    "sa",
    "ne",
    "dri",
    "ul",
    "mar",
    "ze",
    "fi",
    "on",
    "ta",
    "bel",
    "qu",
    "ix",
    "no",
    "va",
    "le",
    "sh",
    "dor",
    "an",
    "ri",
    "ko",
    "su",
    "el",
    "ya",
    "gr",
]
_FIRST = [
    "Ava",
    "Leo",
    "Mila",
    "Noah",
    "Zoe",
    "Omar",
    "Lena",
    "Ivan",
    "Nina",
    "Hugo",
    "Sofía",
    "Jonas",
    "Aiko",
    "Ravi",
    "Elif",
    "Marco",
    "Freya",
    "Kofi",
    "Lucía",
    "Björn",
    "Yuna",
    "Theo",
    "Ines",
    "Caleb",
    "Maya",
    "Dario",
    "Priya",
    "Finn",
    "Chloé",
    "Mateo",
]
_LAST = [
    "Stone",
    "Rivers",
    "Nakamura",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Silva",
    "Kowalski",
    "Haddad",
    "Reyes",
    "Fischer",
    "Park",
    "Quinn",
    "Delacroix",
    "Novak",
    "Ambrose",
    "Castillo",
    "Hart",
    "Weller",
    "Sato",
]
_ADJ = [
    "Golden",
    "Silent",
    "Electric",
    "Velvet",
    "Neon",
    "Broken",
    "Midnight",
    "Crystal",
    "Wild",
    "Paper",
    "Hollow",
    "Burning",
    "Lonely",
    "Cosmic",
    "Faded",
    "Sweet",
    "Cold",
    "Northern",
    "Little",
    "Endless",
    "Secret",
    "Blue",
    "Heavy",
    "Slow",
    "Bright",
    "Lost",
    "Savage",
    "Gentle",
    "Young",
    "Dusty",
]
_NOUN = [
    "Hearts",
    "Rain",
    "Echoes",
    "Sky",
    "Lights",
    "Waves",
    "Roads",
    "Fire",
    "Dreams",
    "Ghosts",
    "Tides",
    "Mirrors",
    "Horizon",
    "Summer",
    "Shadows",
    "Satellites",
    "Gardens",
    "Thunder",
    "Wolves",
    "City",
    "Rivers",
    "Stars",
    "Machines",
    "Heat",
    "Sirens",
    "Letters",
    "Motel",
    "Canyon",
    "Signal",
    "Bloom",
]
_VERB = [
    "Falling",
    "Running",
    "Dancing",
    "Waiting",
    "Breathing",
    "Chasing",
    "Drifting",
    "Burning",
    "Calling",
    "Fading",
    "Holding",
    "Leaving",
    "Moving",
    "Shining",
    "Talking",
]
_TOPIC = [
    "Money",
    "History",
    "Science",
    "Football",
    "Startups",
    "True Crime",
    "Cooking",
    "Design",
    "Health",
    "Politics",
    "Space",
    "Film",
    "Books",
    "Music",
    "Comedy",
    "Language",
    "Parenting",
    "Tech",
    "Travel",
    "Philosophy",
]


def base62_ids(rng: np.random.Generator, n: int) -> list[str]:
    """n unique 22-char base62 ids."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        m = n - len(out)
        chars = BASE62[rng.integers(0, 62, size=(m, 22))]
        for row in chars:
            s = "".join(row)
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


def _uniq(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for nm in names:
        if nm in seen:
            seen[nm] += 1
            nm = f"{nm} {_roman(seen[nm])}"
        else:
            seen[nm] = 1
        out.append(nm)
    return out


def _roman(n: int) -> str:
    vals = [(10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    s = ""
    for v, r in vals:
        while n >= v:
            s += r
            n -= v
    return s


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    kind = rng.integers(0, 4, n)
    a = rng.integers(0, 30, (n, 4))
    out = []
    for k, (i, j, x, y) in zip(kind.tolist(), a.tolist(), strict=True):
        if k == 0:
            out.append(f"{_FIRST[i]} {_LAST[j % 20]}")
        elif k == 1:
            out.append(f"The {_ADJ[i]} {_NOUN[j]}")
        elif k == 2:
            out.append((_SYL[i] + _SYL[j] + _SYL[x]).capitalize())
        else:
            out.append(f"{(_SYL[i] + _SYL[y]).upper()} {_NOUN[x]}")
    return _uniq(out)


def _title(rng: np.random.Generator, n: int) -> list[str]:
    kind = rng.integers(0, 5, n)
    a = rng.integers(0, 30, (n, 3))
    out = []
    for k, (i, j, x) in zip(kind.tolist(), a.tolist(), strict=True):
        if k == 0:
            out.append(f"{_ADJ[i]} {_NOUN[j]}")
        elif k == 1:
            out.append(f"{_NOUN[i]} of {_NOUN[j]}")
        elif k == 2:
            out.append(f"{_VERB[i % 15]} {_NOUN[j]}")
        elif k == 3:
            out.append(_NOUN[i])
        else:
            out.append(f"{_VERB[x % 15]} in the {_ADJ[i]} {_NOUN[j]}")
    return out


@dataclass
class Catalog:
    artists: pd.DataFrame
    albums: pd.DataFrame
    tracks: pd.DataFrame
    shows: pd.DataFrame
    episodes: pd.DataFrame
    # fast-access arrays for the event generator
    artist_weight: np.ndarray  # latent play-share weight (Zipf)
    artist_genre: np.ndarray  # primary genre index per artist
    track_artist: np.ndarray  # primary artist index per track
    track_genre: np.ndarray
    track_weight: np.ndarray  # artist weight * in-artist weight
    track_year: np.ndarray
    track_duration: np.ndarray
    episode_show: np.ndarray
    episode_duration: np.ndarray


def n_artists_for(users: int) -> int:
    return int(min(5000, max(300, 3 * users)))


def generate_catalog(seed: int, users: int, end_date: dt.date) -> Catalog:
    rng = np.random.default_rng([seed, 7_000_001])
    na = n_artists_for(users)
    gw = np.array([GENRE_PARAMS[g][12] for g in GENRES])
    a_genre = rng.choice(len(GENRES), size=na, p=gw / gw.sum())
    ranks = rng.permutation(na) + 1
    a_weight = 1.0 / ranks.astype(float) ** 1.05  # Zipf-like play share
    lw = np.log(a_weight)
    pop = np.clip(
        np.round(100 * (lw - lw.min()) / (lw.max() - lw.min()) * 0.9 + 8 + rng.normal(0, 4, na)), 0, 100
    )
    followers = np.round(a_weight * 4e7 * rng.lognormal(0, 0.5, na) + rng.integers(50, 5000, na)).astype(
        np.int64
    )
    a_ids = base62_ids(rng, na)
    a_names = _artist_names(rng, na)
    a_genres = []
    for gi in a_genre.tolist():
        g = GENRES[gi]
        k = int(rng.integers(0, 3))
        nb = NEIGHBOURS[g]
        extra = [nb[i] for i in sorted(rng.choice(len(nb), size=min(k, len(nb)), replace=False).tolist())]
        a_genres.append(";".join([g, *extra]))
    artists = pd.DataFrame(
        {
            "artist_id": a_ids,
            "artist_name": a_names,
            "genres": a_genres,
            "popularity": pop.astype(np.int64),
            "followers": followers,
        }
    )

    # albums: more for popular artists
    n_alb = np.clip(1 + rng.poisson(1.2 + 2.0 * (pop / 100.0)), 1, 8)
    alb_artist = np.repeat(np.arange(na), n_alb)
    nal = len(alb_artist)
    atype = rng.choice(3, size=nal, p=[0.55, 0.37, 0.08])
    total = np.where(atype == 1, rng.integers(1, 4, nal), rng.integers(5, 16, nal))
    g_of = a_genre[alb_artist]
    centre = np.array([GENRE_PARAMS[g][10] for g in GENRES])[g_of]
    sd = np.array([GENRE_PARAMS[g][11] for g in GENRES])[g_of]
    year = np.clip(np.round(rng.normal(centre, sd)), 1960, end_date.year).astype(int)
    month = rng.integers(1, 13, nal)
    day = rng.integers(1, 29, nal)
    prec = rng.choice(3, size=nal, p=[0.8, 0.05, 0.15])  # day, month, year
    prec = np.where(year < 1980, np.where(rng.random(nal) < 0.5, 2, prec), prec)
    rel, precs = [], []
    for y, m, d, p in zip(year.tolist(), month.tolist(), day.tolist(), prec.tolist(), strict=True):
        if y == end_date.year and (m, d) > (end_date.month, end_date.day):
            m, d = 1, 1
        if p == 0:
            rel.append(f"{y:04d}-{m:02d}-{d:02d}")
            precs.append("day")
        elif p == 1:
            rel.append(f"{y:04d}-{m:02d}")
            precs.append("month")
        else:
            rel.append(f"{y:04d}")
            precs.append("year")
    alb_ids = base62_ids(rng, nal)
    alb_names = _title(rng, nal)
    types = np.array(["album", "single", "compilation"])[atype]
    albums = pd.DataFrame(
        {
            "album_id": alb_ids,
            "album_name": alb_names,
            "artist_id": np.array(a_ids, dtype=object)[alb_artist],
            "release_date": rel,
            "release_date_precision": precs,
            "album_type": types,
            "total_tracks": total.astype(np.int64),
        }
    )

    # tracks
    t_album = np.repeat(np.arange(nal), total)
    nt = len(t_album)
    t_artist = alb_artist[t_album]
    t_genre = a_genre[t_artist]
    t_year = year[t_album]
    # in-artist weight: first tracks of an album and singles are the hits
    pos = np.arange(nt) - np.repeat(np.cumsum(total) - total, total)
    in_w = rng.lognormal(0, 0.8, nt) / (1 + pos) ** 0.6
    t_weight = a_weight[t_artist] * in_w
    P = np.array([GENRE_PARAMS[g][:10] for g in GENRES])[t_genre]
    dur = np.round(rng.lognormal(np.log(P[:, 8] * 1000), 0.22)).astype(np.int64)
    dur = np.clip(dur, 45_000, 1_500_000)
    explicit = rng.random(nt) < P[:, 9]

    def feat(col: int, sdv: float, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        return np.round(np.clip(rng.normal(P[:, col], sdv), lo, hi), 3)

    dance = feat(0, 0.09)
    energy = feat(1, 0.09)
    speech = np.round(np.clip(P[:, 2] * rng.lognormal(0, 0.35, nt), 0.02, 0.95), 4)
    acoustic = feat(3, 0.1)
    instr = feat(4, 0.12)
    valence = feat(5, 0.15)
    tempo = np.round(np.clip(rng.normal(P[:, 6], 10), 50, 210), 3)
    loud = np.round(np.clip(rng.normal(P[:, 7], 2.0), -40, 0), 3)
    liveness = np.round(np.clip(rng.lognormal(np.log(0.13), 0.5, nt), 0.02, 0.99), 4)
    key = rng.integers(0, 12, nt)
    mode = (rng.random(nt) < 0.62).astype(np.int64)
    tsig = rng.choice([3, 4, 5], size=nt, p=[0.08, 0.89, 0.03])
    tpop = np.clip(np.round(pop[t_artist] - 8 + 10 * np.log10(in_w + 0.05) + rng.normal(0, 5, nt)), 0, 100)
    t_ids = base62_ids(rng, nt)
    titles = _title(rng, nt)
    # features: 10 % of tracks with 1-2 extra artists of the same primary genre
    by_genre = [np.flatnonzero(a_genre == g) for g in range(len(GENRES))]
    feat_n = np.where(rng.random(nt) < 0.10, rng.integers(1, 3, nt), 0)
    feat_pick = rng.random((nt, 2))
    a_ids_arr = np.array(a_ids, dtype=object)
    a_names_arr = np.array(a_names, dtype=object)
    artist_ids, artist_names, t_names = [], [], []
    for i in range(nt):
        pa = int(t_artist[i])
        ids = [a_ids[pa]]
        nms = [a_names[pa]]
        name = titles[i]
        k = int(feat_n[i])
        if k:
            pool = by_genre[int(t_genre[i])]
            extra = []
            for j in range(k):
                cand = int(pool[int(feat_pick[i, j] * len(pool))])
                if cand != pa and cand not in extra:
                    extra.append(cand)
            if extra:
                ids += [a_ids_arr[c] for c in extra]
                nms += [a_names_arr[c] for c in extra]
                name = f"{name} (feat. {', '.join(a_names_arr[c] for c in extra)})"
        if t_year[i] < 1995 and feat_pick[i, 0] < 0.15:
            name = f"{name} - Remastered {int(t_year[i]) + 20 + int(feat_pick[i, 1] * 10)}"
        artist_ids.append(";".join(ids))
        artist_names.append(";".join(nms))
        t_names.append(name)
    # (primary artist, track name) unique so account-data rows resolve unambiguously
    keyed = _uniq([f"{a}\x00{n}" for a, n in zip(t_artist.tolist(), t_names, strict=True)])
    t_names = [k.split("\x00", 1)[1] for k in keyed]
    cc = np.array(["US", "GB", "DE", "SE", "FR", "BR", "JP", "KR", "IN", "CA"])[rng.integers(0, 10, na)]
    reg_chars = BASE62[rng.integers(10, 36, (na, 3))]
    reg = np.array(["".join(r) for r in reg_chars], dtype=object)
    isrc = [
        f"{cc[a]}{reg[a].upper()}{y % 100:02d}{i % 100000:05d}"
        for i, (a, y) in enumerate(zip(t_artist.tolist(), t_year.tolist(), strict=True))
    ]
    a_genres_arr = np.array(a_genres, dtype=object)
    tracks = pd.DataFrame(
        {
            "track_id": t_ids,
            "track_name": t_names,
            "artist_ids": artist_ids,
            "artist_names": artist_names,
            "album_id": np.array(alb_ids, dtype=object)[t_album],
            "album_name": np.array(alb_names, dtype=object)[t_album],
            "release_date": np.array(rel, dtype=object)[t_album],
            "release_date_precision": np.array(precs, dtype=object)[t_album],
            "duration_ms": dur,
            "explicit": explicit,
            "popularity": tpop.astype(np.int64),
            "isrc": isrc,
            "genres": a_genres_arr[t_artist],
            "danceability": dance,
            "energy": energy,
            "key": key.astype(np.int64),
            "loudness": loud,
            "mode": mode,
            "speechiness": speech,
            "acousticness": acoustic,
            "instrumentalness": instr,
            "liveness": liveness,
            "valence": valence,
            "tempo": tempo,
            "time_signature": tsig.astype(np.int64),
        }
    )

    # podcasts
    ns = 60
    s_ids = base62_ids(rng, ns)
    topic = rng.integers(0, len(_TOPIC), ns)
    s_names = _uniq(
        [
            f"{_ADJ[int(a)]} {_TOPIC[int(t)]}" if k else f"The {_TOPIC[int(t)]} Show"
            for a, t, k in zip(rng.integers(0, 30, ns), topic, rng.integers(0, 3, ns), strict=True)
        ]
    )
    pubs = [
        f"{_FIRST[int(i)]} {_LAST[int(j)]}"
        for i, j in zip(rng.integers(0, 30, ns), rng.integers(0, 20, ns), strict=True)
    ]
    shows = pd.DataFrame({"show_id": s_ids, "show_name": s_names, "publisher": pubs})
    n_ep = rng.integers(15, 60, ns)
    e_show = np.repeat(np.arange(ns), n_ep)
    ne = len(e_show)
    e_num = np.arange(ne) - np.repeat(np.cumsum(n_ep) - n_ep, n_ep) + 1
    e_dur = np.clip(np.round(rng.lognormal(np.log(40 * 60_000), 0.45, ne)), 5 * 60_000, 4 * 3600_000).astype(
        np.int64
    )
    e_ids = base62_ids(rng, ne)
    e_titles = _title(rng, ne)
    e_names = [f"Ep. {n}: {t}" for n, t in zip(e_num.tolist(), e_titles, strict=True)]
    start = np.datetime64(end_date) - np.timedelta64(3 * 365, "D")
    e_rel = (start + (e_num * 7 + rng.integers(0, 5, ne)).astype("timedelta64[D]")).astype(str)
    episodes = pd.DataFrame(
        {
            "episode_id": e_ids,
            "episode_name": e_names,
            "show_id": np.array(s_ids, dtype=object)[e_show],
            "duration_ms": e_dur,
            "release_date": e_rel,
        }
    )
    return Catalog(
        artists,
        albums,
        tracks,
        shows,
        episodes,
        a_weight,
        a_genre,
        t_artist,
        t_genre,
        t_weight,
        t_year,
        dur,
        e_show,
        e_dur,
    )
