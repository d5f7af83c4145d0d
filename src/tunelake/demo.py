"""`tunelake demo`: the whole platform on a synthetic world, from nothing to a summary (and later steps)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelake.errors import TunelakeError
from tunelake.workspace import Workspace


@dataclass
class DemoResult:
    world: Path
    listeners: int = 0
    plays: int = 0
    hours: float = 0.0
    top_artists: list[tuple[str, int]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def summary_text(self) -> str:
        lines = [
            f"[bold green]Demo done[/] — {self.listeners} listeners, {self.plays:,} plays, {self.hours:,.0f} hours "
            f"of music (world in {self.world})",
            "Top artists: " + ", ".join(f"{a} ({n:,})" for a, n in self.top_artists),
            "Timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()),
        ]
        lines += [f"{k}: {v}" for k, v in self.extras.items()]
        return "\n".join(lines)


def summarize(ws: Workspace, result: DemoResult) -> None:
    from tunelake.warehouse.store import open_warehouse

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
    serve: bool = False,
    progress_factory: Callable[..., Any] | None = None,
    say: Callable[[str], None] = lambda s: None,
) -> DemoResult:
    """Generate → import every listener → import the catalogue → build (→ analytics, report, dashboard)."""
    from contextlib import nullcontext

    from tunelake.ingest import import_many
    from tunelake.sources.catalog import import_catalog
    from tunelake.synthetic.world import generate_world
    from tunelake.warehouse.build import build

    def bar(label: str) -> Any:
        return progress_factory(label) if progress_factory else nullcontext(lambda *a: None)

    if source not in ("export", "api"):
        raise TunelakeError(f"--source must be export or api, not {source!r}")
    world = ws.root / "world"
    result = DemoResult(world)
    t0 = time.perf_counter()
    params = {"users": users, "days": days, "seed": seed}
    world_json = world / "world.json"
    if world_json.exists() and {k: json.loads(world_json.read_text()).get(k) for k in params} == params:
        say(f"Synthetic world already in {world}")
    else:
        with bar("Generating world") as update:
            generate_world(world, users=users, days=days, seed=seed,
                           progress=lambda d, t: update(d, t, "listeners"))
    result.timings["generate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if source == "api":
        from tunelake.sources.spotify_api import api_demo

        api_demo(ws, world, progress=None)
    else:
        handles = sorted(p.name for p in (world / "exports").iterdir() if p.is_dir())
        with bar("Importing listeners") as update:
            # Both views of each listener (extended history and account data, library, playlists): the overlap
            # rule must merge them into exactly the extended history's playbacks. Listeners run in parallel.
            import_many(ws, [(h, [str(world / "exports" / h)]) for h in handles], progress=update)
    with ws.writing(command="demo: catalogue"):
        import_catalog(ws.lake, world / "catalog")
    result.timings["import"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with bar("Building warehouse") as update:
        build(ws, progress=update)
    result.timings["build"] = time.perf_counter() - t0

    from tunelake.pipeline import post_build_steps

    if serve:  # serving blocks until Ctrl-C: say what was built before the dashboard takes over
        summarize(ws, result)
        say(result.summary_text)
    result.extras.update(post_build_steps(ws, result, serve=serve, say=say, bar=bar))
    summarize(ws, result)
    return result
