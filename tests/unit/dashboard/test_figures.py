"""The charts are built as plain Plotly dicts (no validated `go.Figure`): what a callback answers must still be a
figure Plotly draws — dates as ISO strings, gaps as null, never NaN — holding the numbers a direct SQL query on the
warehouse gives. Expected values come from plain DuckDB on fact_play, not from the metric layer."""

from __future__ import annotations

import math
from typing import Any

import pytest


def _figure(callbacks: Any, chart_id: str, store: dict[str, Any]) -> dict[str, Any]:
    resp = callbacks.post("filters.data", [store], output=f"{chart_id}.figure")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    text = resp.get_data(as_text=True)
    assert "NaN" not in text and "Infinity" not in text  # JSON a browser parses
    return resp.get_json()["response"][chart_id]["figure"]


@pytest.fixture(scope="module")
def one_month(sql: Any) -> tuple[dict[str, Any], int, int, int]:
    """A listener over one month of the demo: the store the page sends, the user key and the date-key bounds."""
    (key,), = sql("SELECT user_key FROM dim_user ORDER BY handle LIMIT 1 OFFSET 1")
    (lo, hi), = sql("""SELECT min(date), max(date) FROM dim_date
                       WHERE month_start = (SELECT min(month_start) FROM dim_date) + INTERVAL 1 MONTH""")
    store = {"start": lo.isoformat(), "end": hi.isoformat(), "user": str(key), "segment": None}
    return store, int(key), int(lo.strftime("%Y%m%d")), int(hi.strftime("%Y%m%d"))


def test_listening_over_time_is_the_days_hours_of_fact_play(callbacks: Any, sql: Any, one_month: Any) -> None:
    store, key, lo, hi = one_month
    fig = _figure(callbacks, "over-time", store)
    bars, line = fig["data"]
    rows = sql("""SELECT strftime(strptime(CAST(date_key AS VARCHAR), '%Y%m%d'), '%Y-%m-%d'), sum(ms_played) / 3.6e6,
                         count(*)
                  FROM fact_play WHERE user_key = ? AND date_key BETWEEN ? AND ? GROUP BY 1 ORDER BY 1""",
               [key, lo, hi])
    assert len(rows) > 5
    assert [x[:10] for x in bars["x"]] == [d for d, _, _ in rows]  # one bar per listening day, ISO dates
    assert all(isinstance(x, str) for x in bars["x"])
    assert bars["y"] == pytest.approx([h for _, h, _ in rows])
    assert [c[2] for c in bars["customdata"]] == [n for _, _, n in rows]
    assert line["y"] == [1] * len(rows) and line["yaxis"] == "y2"
    assert fig["layout"]["title"]["text"] == "Listening over time (per day)"


def test_heatmap_cells_are_the_hours_per_local_weekday_and_hour(callbacks: Any, sql: Any, one_month: Any) -> None:
    store, key, lo, hi = one_month
    (heat,) = _figure(callbacks, "heatmap", store)["data"]
    assert heat["type"] == "heatmap" and len(heat["z"]) == 7 and all(len(r) == 24 for r in heat["z"])
    want = {(w, h): ms for w, h, ms in sql(
        """SELECT local_weekday, local_hour, sum(ms_played) / 3.6e6 FROM fact_play
           WHERE user_key = ? AND date_key BETWEEN ? AND ? GROUP BY 1, 2""", [key, lo, hi])}
    got = {(w + 1, h): z for w, row in enumerate(heat["z"]) for h, z in enumerate(row) if z}
    assert got.keys() == want.keys()
    for cell, hours in want.items():
        assert math.isclose(got[cell], hours, rel_tol=1e-9), cell


def test_platform_shares_and_session_lengths_count_every_play(callbacks: Any, sql: Any, one_month: Any) -> None:
    store, key, lo, hi = one_month
    (pie,) = _figure(callbacks, "platforms", store)["data"]
    want = dict(sql("""SELECT coalesce(platform, 'unknown'), count(*) FROM fact_play
                       WHERE user_key = ? AND date_key BETWEEN ? AND ? GROUP BY 1""", [key, lo, hi]))
    assert dict(zip(pie["labels"], pie["values"], strict=True)) == want
    (bars,) = _figure(callbacks, "session-lengths", store)["data"]
    (sessions,), = sql("""SELECT count(DISTINCT session_id) FROM fact_play
                          WHERE user_key = ? AND date_key BETWEEN ? AND ?""", [key, lo, hi])
    assert sum(bars["y"]) == sessions > 0
    assert all(isinstance(v, int) for v in bars["y"])


def test_a_day_without_plays_is_an_empty_panel_not_an_error(callbacks: Any, sql: Any) -> None:
    (key, day), = sql("""SELECT u.user_key, d.date FROM dim_user u, dim_date d
                         WHERE NOT EXISTS (SELECT 1 FROM fact_play f WHERE f.user_key = u.user_key
                                                                      AND f.date_key = d.date_key)
                         ORDER BY u.handle, d.date LIMIT 1""")
    store = {"start": day.isoformat(), "end": day.isoformat(), "user": str(key), "segment": None}
    for chart_id in ("over-time", "top-genres", "eras", "skip-completion", "platforms"):  # discovery: whole months
        fig = _figure(callbacks, chart_id, store)
        assert fig["data"] == [], chart_id
        assert fig["layout"]["annotations"][0]["text"].startswith("No "), chart_id
        assert fig["layout"]["xaxis"]["visible"] is False and fig["layout"]["yaxis"]["visible"] is False
