"""`tunelake report` on a real demo workspace: every section is there, the figures are embedded, and the key
numbers equal what a direct SQL query on the warehouse gives."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

SECTIONS = ["summary", "architecture", "data", "listening", "segmentation", "recommendations", "methods", "schema"]


@pytest.fixture(scope="module")
def report(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, requires) -> tuple[Path, str, Path]:
    for module in ("matplotlib", "seaborn", "jinja2"):
        requires(module)
    from tunelake.cli import app
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    cfg = open_workspace(demo_workspace)
    con = duckdb.connect(str(current_warehouse_file(cfg)), read_only=True)
    has_segments = con.execute("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_name = 'user_segment'").fetchone()[0]
    con.close()
    if not has_segments:  # the demo adds analytics once the pipeline step exists; otherwise add them here
        from tunelake.analytics.steps import run_analytics
        from tunelake.warehouse.store import warehouse_writer

        with warehouse_writer(cfg, "analytics") as con:
            run_analytics(cfg, con, "test-analytics")
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(app, ["-w", str(demo_workspace), "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    return out, out.read_text(encoding="utf-8"), current_warehouse_file(cfg)


def value(html: str, fig_id: str) -> str:
    m = re.search(rf'id="fig-{fig_id}"[^>]*data-value="([^"]*)"', html)
    assert m, f"figure {fig_id} missing from the report"
    return m.group(1)


def sql(path: Path, q: str) -> tuple:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(q).fetchone()
    finally:
        con.close()


def test_every_section_is_present_in_order(report: tuple[Path, str, Path]) -> None:
    _, html, _ = report
    positions = [html.find(f'<section id="{s}">') for s in SECTIONS]
    assert all(p > 0 for p in positions), dict(zip(SECTIONS, positions, strict=True))
    assert positions == sorted(positions)
    for heading in ("Choice of k", "Profiles", "Quality gates", "Imports", "Top tracks"):
        assert f"<h3>{heading}</h3>" in html
    for definition in ("Stream", "Skip", "Session", "Time zone and dates"):
        assert f"<dt>{definition}</dt>" in html


def test_key_figures_equal_sql(report: tuple[Path, str, Path]) -> None:
    _, html, wh = report
    plays, ms, listeners, streams = sql(wh, "SELECT count(*), sum(ms_played), count(DISTINCT user_key), "
                                            "count(*) FILTER (WHERE is_stream) FROM fact_play")
    assert int(value(html, "plays")) == plays
    assert int(value(html, "streams")) == streams
    assert int(value(html, "listeners")) == listeners
    assert float(value(html, "hours")) == pytest.approx(ms / 3_600_000, abs=1e-6)
    (k,) = sql(wh, "SELECT count(DISTINCT segment) FROM user_segment")
    assert int(value(html, "k")) == k
    (chosen_k,) = sql(wh, "SELECT k FROM segment_selection WHERE chosen")
    assert chosen_k == k
    best_method, best_ndcg = sql(wh, "SELECT method, ndcg_at_k FROM rec_evaluation WHERE is_default")
    assert float(value(html, "best-ndcg")) == pytest.approx(best_ndcg, rel=1e-12)
    assert re.search(r'id="fig-best-ndcg"[^>]*data-method="([^"]+)"', html).group(1) == best_method


def test_figures_are_embedded_and_nothing_is_fetched(report: tuple[Path, str, Path]) -> None:
    _, html, _ = report
    images = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', html)
    alts = {a for a, _ in images}
    for needed in ("Architecture diagram", "Listening over time", "Hour by weekday heatmap", "Choice of k",
                   "2-D map of listeners", "Segment profiles", "Recommender evaluation"):
        assert needed in alts
    for _, src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(https?:)?//', html), "the report must be self-contained"


def test_schema_appendix_lists_every_table(report: tuple[Path, str, Path]) -> None:
    from tunelake.warehouse.tables import TABLES

    _, html, _ = report
    for name, spec in TABLES.items():
        assert f'id="schema-{name}"' in html
        for col in spec.columns:
            assert f"<td>{col.name}</td>" in html


def test_evaluation_table_matches_rec_evaluation(report: tuple[Path, str, Path]) -> None:
    _, html, wh = report
    con = duckdb.connect(str(wh), read_only=True)
    rows = con.execute("SELECT method, ndcg_at_k FROM rec_evaluation").fetchall()
    con.close()
    table = re.search(r'<table class="data" id="rec-evaluation">(.*?)</table>', html, re.S).group(1)
    for method, ndcg in rows:
        assert re.search(rf"<td>{method}</td>.*?<td>{ndcg:.4f}</td>", table, re.S), method


def test_pdf(report: tuple[Path, str, Path], requires) -> None:
    requires("bin:chromium")
    from tunelake.report.build import write_pdf

    out, _, _ = report
    pdf = write_pdf(out, out.with_suffix(".pdf"))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 50_000
