"""`tunelake demo`: the whole platform on a synthetic world, from nothing to a summary — generated here, then
imported (from the export files, or through the fake Spotify API), built, checked, analysed and reported by the
same runner as `tunelake run`. It lives in cli/ because only cli/ (and tests) may use the synthetic world."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from tunelake.cli.common import console, progress_bar, workspace
from tunelake.errors import TunelakeError
from tunelake.pipeline import RunInfo, run
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    ctx: typer.Context,
    users: int = typer.Option(120, "--users", "-n", min=2, help="Number of synthetic listeners"),
    days: int = typer.Option(180, "--days", "-d", min=7, help="Days of history"),
    seed: int = typer.Option(42, "--seed", "-s", help="Random seed"),
    source: str = typer.Option("export", "--source", help="export (files) or api (through the fake Spotify API, "
                               "which like Spotify shows each listener's last 50 plays)"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the dashboard at the end"),
    world_kind: str = typer.Option("default", "--world",
                                   help="default (seven clean listener types) or hard (blended, drifting, "
                                        "heavy-tailed listeners whose histories end anywhere)"),
) -> None:
    """Generate a synthetic world and run everything on it: import → build → quality gates → segments →
    recommendations → report, then serve the dashboard (--no-serve stops after the report)."""
    ws = workspace(ctx)
    result = run_demo(ws, users=users, days=days, seed=seed, source=source, progress_factory=progress_bar,
                      say=console.print, world_kind=world_kind)
    console.print(summary_text(result))
    if serve:
        from tunelake.dashboard.app import serve as serve_dashboard

        serve_dashboard(ws, ws.settings.dashboard_host, ws.settings.dashboard_port, say=console.print)


@dataclass
class DemoResult:
    world: Path
    listeners: int = 0
    plays: int = 0
    hours: float = 0.0
    top_artists: list[tuple[str, int]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    run: RunInfo | None = None


def summary_text(result: DemoResult) -> str:
    lines = [
        f"[bold green]Demo done[/] — {result.listeners} listeners, {result.plays:,} plays, {result.hours:,.0f} hours "
        f"of music (world in {result.world})",
        "Top artists: " + ", ".join(f"{a} ({n:,})" for a, n in result.top_artists),
        "Timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()),
    ]
    lines += [f"{k}: {v}" for k, v in result.extras.items()]
    return "\n".join(lines)


def summarize(ws: Workspace, result: DemoResult) -> None:
    con = open_warehouse(ws)
    try:
        result.listeners = con.execute("SELECT count(*) FROM dim_user").fetchone()[0]
        result.plays, ms = con.execute("SELECT count(*), coalesce(sum(ms_played), 0) FROM fact_play").fetchone()
        result.hours = ms / 3_600_000
        result.top_artists = con.execute(
            "SELECT a.artist_name, count(*) AS n FROM fact_play f JOIN dim_artist a USING (artist_id) "
            "WHERE f.is_stream GROUP BY a.artist_name ORDER BY n DESC, a.artist_name LIMIT 5").fetchall()
    finally:
        con.close()


def run_demo(
    ws: Workspace,
    *,
    users: int = 120,
    days: int = 180,
    seed: int = 42,
    source: str = "export",
    progress_factory: Callable[..., Any] | None = None,
    say: Callable[[str], None] = lambda s: None,
    world_kind: str = "default",
) -> DemoResult:
    """Generate → import every listener and the catalogue → build → gates → analytics → switch → report."""
    def bar(label: str) -> Any:
        return progress_factory(label) if progress_factory else nullcontext(lambda *a, **k: None)

    from tunelake.synthetic.world import generate_world  # here, not at the top: `tunelake --help` needs no world

    if source not in ("export", "api"):
        raise TunelakeError(f"--source must be export or api, not {source!r}")
    if world_kind not in ("default", "hard"):
        raise TunelakeError(f"--world must be default or hard, not {world_kind!r}")
    world = ws.root / "world"
    result = DemoResult(world)
    t0 = time.perf_counter()
    params = {"users": users, "days": days, "seed": seed}
    world_json = world / "world.json"
    have = json.loads(world_json.read_text()) if world_json.exists() else None
    if have and {k: have.get(k) for k in params} == params and have.get("world", "default") == world_kind:
        say(f"Synthetic world already in {world}")
    else:
        with bar("Generating world") as update:
            generate_world(world, users=users, days=days, seed=seed, world=world_kind,
                           progress=lambda d, t: update(d, t, "listeners"))
    result.timings["generate"] = time.perf_counter() - t0
    jobs: list[tuple[str, list[str]]] = []
    if source == "api":
        t0 = time.perf_counter()
        api_demo(ws, world)
        result.timings["pull"] = time.perf_counter() - t0
    else:
        # Both views of each listener (extended history and account data, library, playlists): the overlap rule
        # must merge them into exactly the extended history's playbacks. Listeners run in parallel.
        jobs = [(p.name, [str(p)]) for p in sorted((world / "exports").iterdir()) if p.is_dir()]
    info = run(ws, jobs=jobs, catalog=world / "catalog", bar=bar)
    result.run = info
    for s in info.steps:
        if s.seconds is not None and s.step != "commit":
            result.timings[s.step] = s.seconds
    q = info.step("quality")
    if q is not None and q.details.get("summary"):
        result.extras["quality"] = q.details["summary"]
    analytics = info.step("analytics")
    for key in ("segments", "recommendations"):
        value = (analytics.details.get(key) if analytics else None) or {}
        if isinstance(value, dict) and value.get("summary"):
            result.extras[key] = value["summary"]
    rep = info.step("report")
    if rep is not None and rep.details.get("path"):
        result.extras["report"] = rep.details["path"]
    result.extras["run"] = info.run_id
    summarize(ws, result)
    return result


def api_demo(
    ws: Workspace,
    world_dir: str | Path,
    progress: Callable[[int, int, str], None] | None = None,
    *,
    dev_mode: bool = False,
    handles: list[str] | None = None,
) -> list[Any]:
    """Start the fake Spotify server on loopback, log every listener in (auto-approve) and pull everything.

    The whole Spotipy path runs with no network: PKCE login, token cache, paging, enrichment. The server answers
    as Spotify does, with only the last 50 plays of each listener: the rest of a history comes from the export.
    """
    from tunelake.curate.pull import login, pull  # the api extra
    from tunelake.synthetic.server import REAL_RECENT_LIMIT, FakeSpotify
    results = []
    with FakeSpotify(world_dir, dev_mode=dev_mode, recent_limit=REAL_RECENT_LIMIT) as srv:
        local = ws.with_settings(spotify_api_url=srv.api_url, spotify_accounts_url=srv.accounts_url,
                                 spotify_client_id=ws.settings.spotify_client_id or "tunelake-demo")
        todo = handles if handles is not None else srv.world.handles
        for i, handle in enumerate(todo):
            if progress:
                progress(i, len(todo), handle)
            login(local, handle, method="auto", listener=handle)
            results.append(pull(local, handle))
        if progress:
            progress(len(todo), len(todo), "done")
    return results
