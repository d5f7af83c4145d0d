"""The hard synthetic world: blended, drifting, heavy-tailed listeners whose histories end anywhere — and a default
world that does not change because the hard one exists."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunelake.synthetic.catalog_gen import GENRES
from tunelake.synthetic.hard import NOISE, Mix, blend
from tunelake.synthetic.listeners import TYPES
from tunelake.synthetic.world import generate_world, load_truth

END = dt.date(2026, 6, 30)
DAYS = 150


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("hard")
    return out, generate_world(out, users=21, days=DAYS, seed=5, end_date=END, world="hard")


def plays(out: Path, handle: str) -> pd.DataFrame:
    rows = []
    folder = out / "exports" / handle / "Spotify Extended Streaming History"
    for f in sorted(folder.glob("Streaming_History_Audio_*")):
        rows += [r for r in json.loads(f.read_bytes()) if r["spotify_track_uri"]]
    return pd.DataFrame({"ts": pd.to_datetime([r["ts"] for r in rows]).tz_localize(None),
                         "track_id": [r["spotify_track_uri"].rsplit(":", 1)[1] for r in rows]})


def test_blend_is_a_weighted_mix_with_genre_noise() -> None:
    a, b = TYPES[0], TYPES[5]  # night-owl explorer, nostalgic rock: no genre in common
    pure = blend(a, b, 1.0)
    share = {g: w / sum(a.genres.values()) for g, w in a.genres.items()}
    for g in GENRES:
        assert pure.genres[g] == pytest.approx((1 - NOISE) * share.get(g, 0.0) + NOISE / len(GENRES))
    assert sum(pure.genres.values()) == pytest.approx(1.0)
    quarter = blend(a, b, 0.25)
    assert quarter.skip_p == pytest.approx(0.25 * a.skip_p + 0.75 * b.skip_p)
    assert quarter.hours_weekday.sum() == pytest.approx(1.0)
    assert blend(a, b, 0.5, activity=4.0).sessions_extra == pytest.approx(
        (a.sessions_extra + b.sessions_extra) / 2 * 4.0 ** 0.7)


def test_mix_drifts_linearly_and_names_the_dominant_type() -> None:
    m = Mix(type_a=1, type_b=2, weight_a_start=0.7, weight_a_end=0.3, activity=1.0, first_day=10, last_day=110)
    assert m.weight_at(10) == pytest.approx(0.7) and m.weight_at(60) == pytest.approx(0.5)
    assert m.weight_at(110) == pytest.approx(0.3) and m.weight_at(500) == pytest.approx(0.3)
    assert m.dominant == 1  # mean weight of type a is exactly ½: ties go to the planted type
    assert Mix(1, 2, 0.6, 0.3, 1.0, 0, 10).dominant == 2


def test_truth_keeps_the_mix(hard) -> None:
    out, _ = hard
    t = load_truth(out)
    assert len(t) == 21 and (t["type_a"] != t["type_b"]).all()
    assert t["weight_a_start"].between(0.5, 0.8).all()
    assert ((t["weight_a_start"] - t["weight_a_end"]).round(3).between(0.1, 0.4)).all()
    dominant = np.where((t["weight_a_start"] + t["weight_a_end"]) / 2 >= 0.5, t["type_a"], t["type_b"])
    assert (t["listener_type"] == dominant).all()
    assert (t["first_day"] <= t["last_day"]).all() and t["last_day"].max() == DAYS - 1
    assert json.loads((out / "world.json").read_bytes())["world"] == "hard"


def test_histories_end_anywhere_and_activity_is_heavy_tailed(hard) -> None:
    out, summary = hard
    t = load_truth(out).set_index("handle")
    start = pd.Timestamp(END - dt.timedelta(days=DAYS - 1))
    last = {}
    for h in t.index:
        p = plays(out, h)
        if len(p):
            last[h] = p["ts"].max()
            # no play after the listener's last day (local dates; a day and a half covers every timezone)
            assert p["ts"].max() <= start + pd.Timedelta(days=int(t.loc[h, "last_day"]) + 1.5)
    assert sum(v < pd.Timestamp(END) - pd.Timedelta(days=30) for v in last.values()) >= 3  # stopped early
    # the log-normal activity factor drives how much each listener plays per day of their history
    from scipy.stats import spearmanr

    n = pd.Series({h: v["track_plays"] for h, v in summary.per_user.items()})
    per_day = n / (t["last_day"] - t["first_day"] + 1)
    assert spearmanr(per_day[t.index], t["activity"]).statistic > 0.6


def test_taste_drifts_towards_the_second_type(hard) -> None:
    out, _ = hard
    t = load_truth(out)
    tracks = pd.read_parquet(out / "catalog" / "tracks.parquet", columns=["track_id", "genres"])
    genre_of = dict(zip(tracks["track_id"], tracks["genres"].str.split(";").str[0], strict=True))
    moved = []
    for r in t.itertuples():
        only_b = set(TYPES[[x.name for x in TYPES].index(r.type_b)].genres) - \
            set(TYPES[[x.name for x in TYPES].index(r.type_a)].genres)
        p = plays(out, r.handle)
        if len(p) < 300 or not only_b:
            continue
        p["b"] = p["track_id"].map(genre_of).isin(only_b)
        third = len(p) // 3
        moved.append(p["b"].iloc[-third:].mean() > p["b"].iloc[:third].mean())
    assert len(moved) >= 8 and np.mean(moved) >= 0.75, moved


def test_the_default_world_has_none_of_it(tmp_path: Path) -> None:
    out = tmp_path / "default"
    generate_world(out, users=7, days=20, seed=5, end_date=END)
    t = load_truth(out)
    assert "type_b" not in t.columns and "world" not in json.loads((out / "world.json").read_bytes())
    with pytest.raises(ValueError, match="world"):
        generate_world(tmp_path / "x", users=2, days=2, world="harder")


def test_generate_command_takes_the_world(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunelake.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["generate", "--out", str(tmp_path / "w"), "--users", "3", "--days", "20",
                              "--world", "hard"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "w" / "world.json").read_bytes())["world"] == "hard"
    assert "type_b" in load_truth(tmp_path / "w").columns
    res = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), "--world", "harder"])
    assert res.exit_code != 0 and "--world must be one of default, hard" in str(res.exception or res.output)
