"""The dashboard in a real browser (headless Debian Chromium via Playwright) against a real demo warehouse.

Every expected number is computed here with a direct DuckDB query on fact_play, independently of the metric layer
the dashboard calls, so a filter that is dropped or applied twice on the way from the browser shows up as a wrong
number, not as a pass.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytestmark = pytest.mark.browser

PAGES = [("overview", "/", "Overview"), ("patterns", "/patterns", "Listening patterns"), ("taste", "/taste", "Taste"),
         ("segments", "/segments", "Segments"), ("recommendations", "/recommendations", "Recommendations"),
         ("quality", "/quality", "Data quality")]
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# True once no Dash request is pending, nothing is marked loading and every graph has been drawn.
SETTLED_JS = """() => {
  if (document.querySelector('[data-dash-is-loading="true"]')) return false;
  if (window.__pending && window.__pending > 0) return false;
  const graphs = [...document.querySelectorAll('.dash-graph')];
  return graphs.every(g => { const p = g.querySelector('.js-plotly-plot'); return p && p.data; });
}"""

# Count Dash callback requests in flight, so "settled" also waits for callbacks chained by a filter change.
TRACK_JS = """() => {
  if (window.__tracked) return; window.__tracked = true; window.__pending = 0;
  const orig = window.fetch;
  window.fetch = function(...args) {
    const url = String(args[0] && args[0].url || args[0]);
    if (!url.includes('_dash-update-component')) return orig.apply(this, args);
    window.__pending++;
    return orig.apply(this, args).finally(() => { setTimeout(() => window.__pending--, 50); });
  };
}"""

GRAPHS_JS = """() => [...document.querySelectorAll('.dash-graph')].map(g => {
  const p = g.querySelector('.js-plotly-plot');
  const n = (p._fullData || []).reduce((acc, t) => acc + Math.max(
      (t.x || []).length, (t.y || []).length, (t.z || []).length, (t.values || []).length, (t.r || []).length,
      t.type === 'indicator' && t.value !== undefined ? 1 : 0), 0);
  const notes = ((p.layout && p.layout.annotations) || []).map(a => a.text);
  return {id: g.id, points: n, notes: notes};
})"""


def settle(page: Any) -> None:
    page.wait_for_timeout(150)
    page.wait_for_function(SETTLED_JS, timeout=20_000)
    page.wait_for_timeout(100)
    page.wait_for_function(SETTLED_JS, timeout=20_000)


def open_page(page: Any, base: str, path: str) -> None:
    """Show a page with every filter cleared: load the app once, then navigate through the nav links."""
    key, title = {p: (k, t) for k, p, t in PAGES}[path]
    if not page.url.startswith(base):
        page.goto(base + path, wait_until="load")
        page.evaluate(TRACK_JS)
    else:
        if page.inner_text("#f-summary") != "All data":
            page.click("#f-reset")
            page.wait_for_function("() => document.querySelector('#f-summary').textContent === 'All data'",
                                   timeout=20_000)
        page.click(f"#nav-{key}")
    page.wait_for_function(f"() => (document.querySelector('#page h1') || {{}}).textContent === {title!r}",
                           timeout=20_000)
    settle(page)


def kpi(page: Any, name: str) -> float:
    return float(page.get_attribute(f"#kpi-{name}", "data-value"))


def wait_kpi_change(page: Any, name: str, before: float) -> float:
    page.wait_for_function(
        f"() => {{ const e = document.querySelector('#kpi-{name}'); "
        f"return e && parseFloat(e.dataset.value) !== {before!r}; }}", timeout=20_000)
    settle(page)
    return kpi(page, name)


def expected(ws: Path, where: str = "TRUE", params: list[Any] | None = None) -> tuple[int, float, int]:
    """(plays, hours, listeners) straight from fact_play."""
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    con = duckdb.connect(str(current_warehouse_file(open_workspace(ws))), read_only=True)
    try:
        plays, ms, users = con.execute(
            f"SELECT count(*), coalesce(sum(ms_played), 0), count(DISTINCT user_key) FROM fact_play WHERE {where}",
            params or []).fetchone()
        return int(plays), ms / 3_600_000, int(users)
    finally:
        con.close()


def query(ws: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    con = duckdb.connect(str(current_warehouse_file(open_workspace(ws))), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def choose(page: Any, dropdown_id: str, label: str) -> None:
    """Pick an option in a Dash 4 dropdown the way a person does: open, search, click."""
    page.click(f"#{dropdown_id}")
    search = page.locator(".dash-dropdown-search, input[type=search]").first
    if search.count():
        search.fill(label)
    page.get_by_role("option", name=label, exact=False).first.click()
    page.keyboard.press("Escape")


@pytest.mark.parametrize(("name", "path", "title"), PAGES)
def test_every_page_loads_with_data_and_no_console_errors(dash_url: str, page: Any, artifacts: Path,
                                                          name: str, path: str, title: str) -> None:
    open_page(page, dash_url, path)
    graphs = page.evaluate(GRAPHS_JS)
    page.screenshot(path=str(artifacts / f"dashboard-{name}.png"), full_page=True)

    assert page.console_log.errors == []
    assert graphs, f"{path} shows no charts"
    empty = [g for g in graphs if g["points"] == 0 or any("No data" in n or "not available" in n or
                                                          "No segments" in n or "No recommendations" in n
                                                          for n in g["notes"])]
    assert empty == [], f"charts without data on {path}: {empty}"
    tables = page.evaluate("() => [...document.querySelectorAll('table.data-table')].map(t => "
                           "[t.id, t.querySelectorAll('tbody tr td').length > 1])")
    assert all(has_rows for _, has_rows in tables), f"empty tables on {path}: {tables}"
    outside = [u for u in page.requests_seen if not u.startswith(dash_url) and not u.startswith("data:")]
    assert outside == [], "the dashboard must not fetch anything from outside (no CDN)"


def test_overview_kpis_equal_sql(dash_url: str, page: Any, dash_workspace: Path) -> None:
    open_page(page, dash_url, "/")
    plays, hours, users = expected(dash_workspace)
    assert kpi(page, "plays") == plays
    assert kpi(page, "hours") == pytest.approx(hours, rel=1e-9)
    assert kpi(page, "listeners") == users
    streams = query(dash_workspace, "SELECT count(*) FROM fact_play WHERE is_stream")[0][0]
    assert kpi(page, "streams") == streams


def test_listener_and_date_filters_change_kpis_to_sql_values(dash_url: str, page: Any, dash_workspace: Path,
                                                             artifacts: Path) -> None:
    open_page(page, dash_url, "/")
    # a listener in the middle of the list, so the test does not pass by picking a default
    (user_key, handle), = query(dash_workspace, "SELECT user_key, handle FROM dim_user ORDER BY handle "
                                                "LIMIT 1 OFFSET 3")
    before = kpi(page, "plays")
    choose(page, "f-user", handle)
    after = wait_kpi_change(page, "plays", before)
    plays, hours, users = expected(dash_workspace, "user_key = ?", [user_key])
    assert after == plays and 0 < plays < before
    assert kpi(page, "hours") == pytest.approx(hours, rel=1e-9)
    assert kpi(page, "listeners") == users == 1

    # then a date range on top (local calendar dates, inclusive): the second month of data
    (lo, hi), = query(dash_workspace, """SELECT min(date), max(date) FROM dim_date WHERE month_start =
                                          (SELECT min(month_start) FROM dim_date) + INTERVAL 1 MONTH""")
    page.fill("#f-start", lo.isoformat())
    page.press("#f-start", "Enter")
    page.fill("#f-end", hi.isoformat())
    page.press("#f-end", "Enter")
    after2 = wait_kpi_change(page, "plays", after)
    k_lo, k_hi = int(lo.strftime("%Y%m%d")), int(hi.strftime("%Y%m%d"))
    plays2, hours2, _ = expected(dash_workspace, "user_key = ? AND date_key BETWEEN ? AND ?", [user_key, k_lo, k_hi])
    assert after2 == plays2 and 0 < plays2 < plays
    assert kpi(page, "hours") == pytest.approx(hours2, rel=1e-9)
    page.screenshot(path=str(artifacts / "dashboard-overview-filtered.png"), full_page=True)

    page.click("#f-reset")
    assert wait_kpi_change(page, "plays", after2) == expected(dash_workspace)[0]
    assert page.console_log.errors == []


def _click_first_bar(page: Any, graph_id: str) -> None:
    bar = page.locator(f"#{graph_id} .bars .point path").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    assert box and box["height"] > 0, f"no bar to click in {graph_id}"
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + max(box["height"] - 3, 1) / 2 + 1)


def test_clicking_a_period_bar_filters_every_chart(dash_url: str, page: Any, dash_workspace: Path) -> None:
    open_page(page, dash_url, "/")
    before = kpi(page, "plays")
    _click_first_bar(page, "over-time")
    after = wait_kpi_change(page, "plays", before)
    lo, hi = page.input_value("#f-start"), page.input_value("#f-end")
    assert lo and hi
    k_lo, k_hi = int(lo.replace("-", "")), int(hi.replace("-", ""))
    plays, _, _ = expected(dash_workspace, "date_key BETWEEN ? AND ?", [k_lo, k_hi])
    assert after == plays and 0 < plays < before
    # the top-artist chart follows the same filter: its first bar equals SQL for that window
    top = page.evaluate("() => { const p = document.querySelector('#top-artists .js-plotly-plot'); "
                        "const t = p._fullData[0]; return [t.y[t.y.length - 1], t.x[t.x.length - 1]]; }")
    (name, hours), = query(dash_workspace, """SELECT a.artist_name, sum(f.ms_played) / 3600000.0 AS h
        FROM fact_play f JOIN dim_artist a USING (artist_id) WHERE f.date_key BETWEEN ? AND ?
        GROUP BY a.artist_id, a.artist_name ORDER BY h DESC LIMIT 1""", [k_lo, k_hi])
    assert top[0] == name
    assert top[1] == pytest.approx(hours, rel=1e-9)
    assert page.console_log.errors == []


def test_clicking_a_segment_filters_the_other_charts(dash_url: str, page: Any, dash_workspace: Path,
                                                     artifacts: Path) -> None:
    segs = query(dash_workspace, "SELECT segment, count(*) FROM user_segment GROUP BY 1 ORDER BY 1")
    assert len(segs) >= 2
    open_page(page, dash_url, "/segments")
    _click_first_bar(page, "segment-sizes")
    page.wait_for_function("() => document.querySelector('#f-segment-value') && "
                           "!document.querySelector('#f-segment-value').classList.contains("
                           "'dash-dropdown-placeholder')", timeout=20_000)
    settle(page)
    first = segs[0][0]
    # the map now highlights the chosen segment: its trace is opaque, the others faded
    opacities = page.evaluate("() => document.querySelector('#segment-map .js-plotly-plot').data.map("
                              "t => [t.customdata[0][0], t.marker.opacity])")
    opacities = [(int(s), o) for s, o in opacities]
    assert {s: o for s, o in opacities} == {s: (0.9 if s == first else 0.2) for s, _ in segs}
    page.screenshot(path=str(artifacts / "dashboard-segments-selected.png"), full_page=True)

    page.click("#nav-overview")
    page.wait_for_selector("#kpi-plays")
    settle(page)
    plays, hours, users = expected(dash_workspace, "user_key IN (SELECT user_key FROM user_segment "
                                                   "WHERE segment = ?)", [first])
    assert kpi(page, "plays") == plays
    assert kpi(page, "hours") == pytest.approx(hours, rel=1e-9)
    assert kpi(page, "listeners") == users == segs[0][1]
    assert page.console_log.errors == []


def test_recommendations_follow_the_listener_filter(dash_url: str, page: Any, dash_workspace: Path) -> None:
    (user_key, handle), = query(dash_workspace, """SELECT user_key, handle FROM dim_user
        WHERE user_key IN (SELECT user_key FROM recommendations) ORDER BY handle DESC LIMIT 1""")
    open_page(page, dash_url, "/recommendations")
    choose(page, "f-user", handle)
    page.wait_for_function(f"() => (document.querySelector('#recs-for') || {{}}).textContent === "
                           f"{json.dumps('Recommended for ' + handle)}", timeout=20_000)
    settle(page)
    rows = page.locator("#recs-table tbody tr").count()
    (n, first), = query(dash_workspace, """SELECT count(*), arg_min(t.track_name, r.rank) FROM recommendations r
                                           JOIN dim_track t USING (track_id) WHERE r.user_key = ?""", [user_key])
    assert rows == min(n, 25) and rows > 0
    assert first in page.inner_text("#recs-table tbody tr:first-child")
    assert page.console_log.errors == []


def test_no_write_path(dash_url: str) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        req = urllib.request.Request(dash_url + "/", method=method)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 405
    req = urllib.request.Request(dash_url + "/anything", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 405


def test_serving_beyond_loopback_warns(dash_workspace: Path) -> None:
    """`serve` warns before binding anything but 127.0.0.1 (checked without binding: port 0 fails fast)."""
    from tunelake.dashboard.app import serve
    from tunelake.workspace import open_workspace

    said: list[str] = []
    with pytest.raises((OSError, OverflowError, ValueError, AssertionError)):
        serve(open_workspace(dash_workspace), host="0.0.0.0", port=-1, say=said.append)
    assert said and said[0].startswith("WARNING") and "0.0.0.0" in said[0]


def test_copy_screenshots_for_docs(artifacts: Path) -> None:
    """Keep docs/screenshots in step when asked (TUNELAKE_UPDATE_SCREENSHOTS=1), after the page tests ran."""
    import os

    if os.environ.get("TUNELAKE_UPDATE_SCREENSHOTS") != "1":
        return
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    for name, _, _ in PAGES:
        src = artifacts / f"dashboard-{name}.png"
        if src.exists():
            shutil.copyfile(src, DOCS_SHOTS / src.name)


def test_a_new_warehouse_is_picked_up_without_restart(dash_workspace: Path, tmp_path: Path) -> None:
    """A build or analytics step switches CURRENT.json; the running app answers from the new file on the next
    request, and its chart cache (keyed by file) never serves the old numbers."""
    from tunelake.dashboard.app import create_app
    from tunelake.warehouse.store import warehouse_writer
    from tunelake.workspace import open_workspace

    ws = tmp_path / "ws"
    shutil.copytree(dash_workspace / "warehouse", ws / "warehouse")
    cfg = open_workspace(ws)
    client = create_app(cfg).server.test_client()
    body = {"output": "kpis.children", "outputs": {"id": "kpis", "property": "children"},
            "inputs": [{"id": "filters", "property": "data", "value": {}}], "changedPropIds": ["filters.data"],
            "state": []}

    def plays() -> int:
        resp = client.post("/_dash-update-component", json=body)
        assert resp.status_code == 200
        tiles = resp.get_json()["response"]["kpis"]["children"]
        return int(next(t["props"]["data-value"] for t in tiles if t["props"]["id"] == "kpi-plays"))

    before = plays()
    assert plays() == before  # second answer from the cache
    with warehouse_writer(cfg, "test") as con:
        (gone,) = con.execute("DELETE FROM fact_play WHERE user_key = (SELECT min(user_key) FROM fact_play)"
                              ).fetchone()
    assert gone > 0
    assert plays() == before - gone
