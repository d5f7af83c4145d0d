"""The viewer in the metric layer: a listener's viewer gives every metric exactly what a filter on that listener
gives, whatever else the filters hold, and a filter on another listener or on a segment is refused, not widened."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from tunelake.analytics import insights
from tunelake.analytics.insights import ADMIN, Filters, NotAllowed, listener_viewer

METRICS = ["kpis", "listening_over_time", "top_artists", "top_tracks", "top_albums", "top_genres",
           "hour_weekday_heatmap", "sessions", "session_stats", "streaks", "skip_completion", "discovery_rate",
           "diversity", "mainstreamness", "eras", "platforms", "audio_profile"]


@pytest.fixture(scope="module")
def con(demo_workspace: Path) -> Any:
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    c = open_warehouse(open_workspace(demo_workspace))
    yield c
    c.close()


def _keys(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [int(k) for (k,) in con.execute("SELECT user_key FROM dim_user ORDER BY handle").fetchall()]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame):
        return a.reset_index(drop=True).equals(b.reset_index(drop=True))
    return a == b


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("window", [None, (date(2000, 1, 1), date(2100, 1, 15))], ids=["all-time", "dates"])
def test_a_listeners_viewer_equals_a_filter_on_them(con: Any, name: str, window: Any) -> None:
    a = _keys(con)[0]
    start, end = window or (None, None)
    fn = getattr(insights, name)
    seen = fn(con, Filters(start=start, end=end, viewer=listener_viewer(a)))
    assert _same(seen, fn(con, Filters(start=start, end=end, user_keys=(a,))))
    assert _same(seen, fn(con, Filters(start=start, end=end, user_keys=(a,), viewer=listener_viewer(a))))


def test_the_viewer_narrows_what_everyone_sees(con: Any) -> None:
    a = _keys(con)[0]
    plays_a = con.execute(f"SELECT count(*) FROM fact_play WHERE user_key = {a}").fetchall()[0][0]
    everyone = insights.kpis(con, Filters(viewer=ADMIN))
    mine = insights.kpis(con, Filters(viewer=listener_viewer(a)))
    assert mine["plays"] == plays_a < everyone["plays"] and mine["listeners"] == 1
    assert list(insights.users(con, listener_viewer(a))["user_key"]) == [a]
    assert len(insights.users(con)) == len(_keys(con))
    assert insights.last_days(con, 7, Filters(viewer=listener_viewer(a))).viewer == listener_viewer(a)


def test_another_listener_or_a_segment_is_refused(con: Any) -> None:
    a, b = _keys(con)[:2]
    with pytest.raises(NotAllowed, match="only their own"):
        Filters(user_keys=(b,), viewer=listener_viewer(a))
    with pytest.raises(NotAllowed, match="only their own"):
        Filters(user_keys=(a, b), viewer=listener_viewer(a))
    with pytest.raises(NotAllowed, match="admins only"):
        Filters(segment=0, viewer=listener_viewer(a))
    assert Filters(user_keys=(b,), viewer=ADMIN).user_keys == (b,)
