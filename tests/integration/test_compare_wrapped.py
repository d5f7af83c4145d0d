"""`tunelake consent`, `tunelake compare` and `tunelake wrapped` on the session's demo workspace, through the real
command line: consent refused and granted, the JSON the commands print against the library's own figures and a
direct query, the card files, and the one-line error with its exit code."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tunelake.analytics.consent import ConsentError
from tunelake.cli import app
from tunelake.errors import InputError
from tunelake.warehouse.store import current_warehouse_file
from tunelake.workspace import open_workspace


def _sql(ws: Path, query: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(current_warehouse_file(open_workspace(ws))), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_compare_needs_consent_and_explains_the_score(demo_workspace: Path) -> None:
    runner = CliRunner()
    ws = ["-w", str(demo_workspace)]
    a, b = "listener-0003", "listener-0004"
    res = runner.invoke(app, [*ws, "compare", a, b])
    assert isinstance(res.exception, ConsentError) and f"{a} and {b} have not agreed" in str(res.exception)
    for h in (a, b):
        assert runner.invoke(app, [*ws, "consent", "grant", "--user", h]).exit_code == 0
    shown = runner.invoke(app, [*ws, "consent", "show", "--format", "json"])
    flags = {r["user"]: r["compare"] for r in json.loads(shown.output)}
    assert flags[a] == flags[b] == "yes" and list(flags.values()).count("yes") >= 2
    try:
        res = runner.invoke(app, [*ws, "compare", a, b, "--half-life", "none", "--n", "1000", "--format", "json"])
        assert res.exit_code == 0, res.output
        r = json.loads(res.output)
        # the unweighted score from a direct query: cosine of the two listeners' stream counts per artist
        rows = _sql(demo_workspace, f"""
            WITH s AS (SELECT u.handle, f.artist_id, count(*) AS n FROM fact_play f JOIN dim_user u USING (user_key)
                       WHERE u.handle IN ('{a}', '{b}') AND f.is_stream AND f.artist_id IS NOT NULL GROUP BY ALL),
            x AS (SELECT artist_id, sum(n) FILTER (WHERE handle = '{a}') AS na,
                         sum(n) FILTER (WHERE handle = '{b}') AS nb FROM s GROUP BY 1)
            SELECT sum(coalesce(na, 0) * coalesce(nb, 0)) / (sqrt(sum(na * na)) * sqrt(sum(nb * nb))) FROM x""")
        assert abs(r["cosine"] - rows[0][0]) < 1e-9 and r["score"] == round(100 * rows[0][0])
        assert len(r["shared_artists"]) == r["shared_artist_count"] > 0  # --n 1000: every shared artist
        assert abs(sum(x["part"] for x in r["shared_artists"]) - r["cosine"]) < 1e-9  # the parts add up
        res = runner.invoke(app, [*ws, "compare", a, b])
        assert res.exit_code == 0 and "might try" in res.output and "/100" in res.output
        res = runner.invoke(app, [*ws, "compare", a, b, "--half-life", "soon"])
        assert isinstance(res.exception, InputError) and "half-life" in str(res.exception)
    finally:
        for h in (a, b):
            runner.invoke(app, [*ws, "consent", "revoke", "--user", h])
    res = runner.invoke(app, [*ws, "compare", a, b])
    assert isinstance(res.exception, ConsentError)


def test_wrapped_command_and_card_files(demo_workspace: Path, tmp_path: Path, requires) -> None:
    requires("matplotlib", "the card is drawn with Matplotlib (extra 'report')")
    runner = CliRunner()
    ws = ["-w", str(demo_workspace)]
    user = "listener-0002"
    (year, ms, plays) = _sql(demo_workspace, f"""
        SELECT date_key // 10000 AS y, sum(ms_played), count(*) FROM fact_play
        WHERE user_key = (SELECT user_key FROM dim_user WHERE handle = '{user}') GROUP BY y ORDER BY y DESC""")[0]
    res = runner.invoke(app, [*ws, "wrapped", "--user", user, "--format", "json", "--out", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output.split("Card written")[0])
    assert (r["year"], r["plays"]) == (year, plays) and abs(r["minutes"] - ms / 60000) < 1e-6
    assert len(r["top_artists"]) == 5 and r["beyond_wrapped"]["sessions"]["sessions"] > 0
    png = (tmp_path / "c.png").read_bytes()
    assert png[:4] == b"\x89PNG" and struct.unpack(">II", png[16:24]) == (1080, 1350)
    res = runner.invoke(app, [*ws, "wrapped", "--user", user, "--year", str(year), "--out", str(tmp_path / "c.svg")])
    assert res.exit_code == 0 and "What Wrapped never shows" in (tmp_path / "c.svg").read_text()
    assert "Longest streak" in res.output and "Podcasts" in res.output
    res = runner.invoke(app, [*ws, "wrapped", "--user", user, "--out", str(tmp_path / "c.gif")])
    assert isinstance(res.exception, InputError) and ".png or .svg" in str(res.exception.hint)


def test_errors_are_one_line_with_exit_code_2(demo_workspace: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-m", "tunelake.cli", "-w", str(demo_workspace), "wrapped", "--user",
                        "listener-0002", "--year", "1999"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "field 'year': listener-0002 played no music in 1999 (years with listening: " in p.stderr
    p = subprocess.run([sys.executable, "-m", "tunelake.cli", "-w", str(demo_workspace), "compare", "listener-0002",
                        "listener-0005"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "field 'consent': listener-0002 and listener-0005 have not agreed to be compared" in p.stderr
