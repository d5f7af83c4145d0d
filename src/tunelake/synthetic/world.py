"""Deterministic synthetic Spotify world.

``generate_world(out, users, days, seed, ...)`` writes a catalogue, one Spotify privacy export per listener
(extended streaming history in the 2024+ format or the old ``endsong`` format, plus the account-data view
of the same plays) and the planted ground truth. Same arguments give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pandas as pd

from tunelake.synthetic.catalog_gen import Catalog, generate_catalog
from tunelake.synthetic.exports import CatLookup, Writer, write_listener
from tunelake.synthetic.hard import simulate_hard, truth_columns
from tunelake.synthetic.listeners import TYPES, era_centre, make_listener, simulate

WORLDS = ("default", "hard")


@dataclass
class WorldSummary:
    out: str
    users: int
    days: int
    seed: int
    end_date: str
    legacy_users: int
    account_data: bool
    track_plays: int = 0  # music rows written to the extended audio/endsong files (incl. duplicates)
    episode_plays: int = 0  # episode rows written there (incl. duplicates)
    video_plays: int = 0  # rows in Streaming_History_Video_* files
    duplicates: int = 0
    total_ms_played: int = 0  # sum of ms_played over audio/endsong rows (music + episodes, incl. duplicates)
    video_ms_played: int = 0
    account_music_rows: int = 0
    account_podcast_rows: int = 0
    artists: int = 0
    albums: int = 0
    tracks: int = 0
    episodes: int = 0
    files: int = 0  # number of files written (world.json excluded)
    bytes_written: int = 0
    types: list[str] = field(default_factory=list)
    per_user: dict[str, dict] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.track_plays + self.episode_plays

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def generate_world(
    out: str | Path,
    users: int = 100,
    days: int = 180,
    seed: int = 42,
    end_date: dt.date = dt.date(2026, 6, 30),
    account_data: bool = True,
    legacy_users: int = 0,
    progress: Callable[[int, int], None] | None = None,
    only: range | None = None,
    world: str = "default",
) -> WorldSummary:
    """Write a synthetic Spotify world to ``out`` and return its summary (also written as ``world.json``).

    Listener ``i`` (0-based) is simulated from ``(seed, i)``; the catalogue from ``seed`` and its size
    (``max(300, 3 * users)`` artists, capped at 5000). The last ``legacy_users`` listeners get the old
    ``endsong_<n>.json`` format under ``exports/<handle>/MyData/``.

    ``only`` writes just those listeners of the world (the catalogue is always the whole world's), so a world larger
    than the disk can be produced and imported a slice at a time, or spread over machines; the slices together are
    the world generated in one go.

    ``world="hard"`` writes the hard world (synthetic/hard.py: blended, drifting, heavy-tailed, noisy listeners
    whose histories end anywhere) in the same formats; the default world's bytes do not depend on it.
    """
    if world not in WORLDS:
        raise ValueError(f"world must be one of {', '.join(WORLDS)}, not {world!r}")
    if users < 1 or days < 1:
        raise ValueError("users and days must be >= 1")
    if not 0 <= legacy_users <= users:
        raise ValueError("legacy_users must be between 0 and users")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    w = Writer()
    cat = generate_catalog(seed, users, end_date)
    _write_catalog(out, cat, w)
    lk = CatLookup(cat)
    start = end_date - dt.timedelta(days=days - 1)
    window_start = (
        dt.datetime(end_date.year, end_date.month, end_date.day, tzinfo=dt.UTC)
        + dt.timedelta(days=1)
        - dt.timedelta(days=365)
    ).timestamp()
    summary = WorldSummary(
        str(out),
        users,
        days,
        seed,
        end_date.isoformat(),
        legacy_users,
        account_data,
        artists=len(cat.artists),
        albums=len(cat.albums),
        tracks=len(cat.tracks),
        episodes=len(cat.episodes),
        types=[t.name for t in TYPES],
    )
    truth = []
    listeners = only if only is not None else range(users)
    if listeners.start < 0 or listeners.stop > users:
        raise ValueError("only must be a range of listener indexes within 0..users")
    for n, i in enumerate(listeners):
        lis = make_listener(i, seed)
        extra: dict = {}
        if world == "hard":
            pl, mix = simulate_hard(lis, cat, seed, start, days)
            extra = truth_columns(mix)
        else:
            pl = simulate(lis, cat, seed, start, days)
        legacy = i >= users - legacy_users
        stats = write_listener(out, lis, pl, lk, cat, seed, legacy, account_data, window_start, w)
        summary.per_user[lis.handle] = stats
        for k in (
            "track_plays",
            "episode_plays",
            "video_plays",
            "duplicates",
            "account_music_rows",
            "account_podcast_rows",
        ):
            setattr(summary, k, getattr(summary, k) + stats[k])
        summary.total_ms_played += stats["ms_played"]
        summary.video_ms_played += stats["video_ms_played"]
        t = TYPES[lis.type_index]
        truth.append(
            {
                "handle": lis.handle,
                "listener_type": t.name,
                "country": lis.country,
                "timezone": lis.timezone,
                "format": "legacy" if legacy else "extended",
                "era_centre": round(era_centre(t), 1),
                **lis.params,
                **extra,
            }
        )
        if progress is not None:
            progress(n + 1, len(listeners))
    w.write(out / "truth" / "listeners.csv", pd.DataFrame(truth).to_csv(index=False).encode())
    summary.files = w.files
    summary.bytes_written = w.bytes
    doc = summary.to_dict() if world == "default" else {**summary.to_dict(), "world": world}
    (out / "world.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return summary


def load_truth(out: str | Path) -> pd.DataFrame:
    """The planted ground truth (one row per listener)."""
    return pd.read_csv(Path(out) / "truth" / "listeners.csv")


def _write_catalog(out: Path, cat: Catalog, w: Writer) -> None:
    d = out / "catalog"
    d.mkdir(parents=True, exist_ok=True)
    for name, df in (
        ("artists", cat.artists),
        ("albums", cat.albums),
        ("tracks", cat.tracks),
        ("shows", cat.shows),
        ("episodes", cat.episodes),
    ):
        p = d / f"{name}.parquet"
        df.to_parquet(p, index=False)
        w.files += 1
        w.bytes += p.stat().st_size
    w.write(d / "tracks.csv", cat.tracks.to_csv(index=False).encode())


