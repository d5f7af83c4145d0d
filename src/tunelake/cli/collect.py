"""`tunelake collect`: the always-on collector. Registered by `tunelake.cli`."""

from __future__ import annotations

import typer

from tunelake.cli.common import console, emit, workspace


def collect_cmd(
    ctx: typer.Context,
    interval: float = typer.Option(None, "--interval", min=1,
                                   help="Base seconds between a listener's polls (default: setting "
                                        "collect_interval_s, 600); adapts to how busy each listener is"),
    once: bool = typer.Option(False, "--once", help="Poll every listener once, run the pipeline if anything new "
                                                     "came in, and exit"),
    users: list[str] = typer.Option(None, "--user", "-u", help="Only these listeners (repeatable); default: every "
                                                              "listener with a Spotify token"),
    no_pipeline: bool = typer.Option(False, "--no-pipeline", help="Collect only; do not run the pipeline"),
) -> None:
    """Keep every connected listener's history complete: poll recently played on an adaptive schedule, take
    daily snapshots, record gaps, and run the pipeline after new plays (at most every pipeline_min_interval_s).
    SIGTERM or Ctrl-C finishes the polls in flight and exits 0. Log: <workspace>/logs/collect.jsonl."""
    from tunelake.collect.collector import Collector

    ws = workspace(ctx)
    collector = Collector(ws, users=users or None, interval_s=interval, once=once, run_pipeline=not no_pipeline)
    collector.install_signal_handlers()
    if not collector.handles():
        console.print("No connected listeners: `tunelake auth login --user NAME` connects one.")
        return
    console.print(f"Collecting {len(collector.handles())} listener(s) every ~{collector.base:g} s "
                  f"(log: {collector.events.path}); Ctrl-C stops.")
    summary = collector.run()
    emit([summary.as_dict()], "table", title="Collected")


def register(app: typer.Typer) -> None:
    app.command("collect")(collect_cmd)
