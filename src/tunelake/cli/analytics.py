"""`tunelake insights`, `tunelake segment`, `tunelake recommend`: thin wrappers over tunelake.analytics."""

from __future__ import annotations

from typing import Any

import typer


def _fmt_hours(h: float) -> str:
    return f"{h:,.1f} h"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def _bits(x: float | None) -> str:
    return "– (unknown)" if x is None else f"{x:.2f} bits"


def _print_wrapped(w: dict[str, Any]) -> None:
    from rich.columns import Columns
    from rich.panel import Panel
    from rich.table import Table

    from tunelake.cli.common import console

    head = (f"[bold]{w['minutes']:,}[/] minutes · {w['plays']:,} plays · {w['distinct_tracks']:,} tracks · "
            f"{w['distinct_artists']:,} artists\n"
            f"{w['start']} → {w['end']}")
    if w.get("segment"):
        head += f"\nYour listener type: [bold magenta]{w['segment']['name']}[/]"
    console.print(Panel(head, title=f"[bold green]{w['handle']} · {w['period']}[/]", expand=False))

    def top(title: str, rows: list[dict[str, Any]], label: Any) -> Table:
        t = Table(title=title, show_header=False, box=None, title_justify="left")
        for i, r in enumerate(rows, 1):
            t.add_row(f"{i}.", label(r), _fmt_hours(r["hours"]))
        return t

    console.print(Columns([
        top("Top artists", w["top_artists"], lambda r: str(r["artist_name"])),
        top("Top tracks", w["top_tracks"], lambda r: f"{r['track_name']} · {r['artist_name']}"),
        top("Top genres", w["top_genres"], lambda r: f"{r['genre']} ({_pct(r['share'])})"),
    ], padding=(0, 4)))
    s, d, m = w["sessions"], w["diversity"], w["mainstreamness"]
    streak = w["longest_streak"]
    facts = Table(show_header=False, box=None)
    facts.add_row("Biggest month", f"{w['top_month']['month']:%B %Y} ({_fmt_hours(w['top_month']['hours'])})")
    facts.add_row("Peak time", f"{w['peak_weekday']}s around {w['peak_hour']:02d}:00")
    if streak:
        facts.add_row("Longest streak", f"{streak['days']} days ({streak['start']} → {streak['end']})")
    median = "–" if s["median_minutes"] is None else f"{s['median_minutes']:.0f} min"
    facts.add_row("Sessions", f"{s['sessions']:,}, median {median}")
    facts.add_row("Skip rate / completion", f"{_pct(w['skip_rate'])} / {_pct(w['mean_completion'])}")
    facts.add_row("New artists", f"{w['new_artists']:,} ({_pct(w['artist_discovery_rate'])} of plays)")
    facts.add_row("Diversity", f"{_bits(d['artist_entropy_bits'])} over artists, "
                               f"{_bits(d['genre_entropy_bits'])} over genres")
    if m["mean_popularity"] is not None:
        facts.add_row("Mainstreamness", f"{m['mean_popularity']:.0f}/100 (coverage {_pct(m['coverage'])})")
    if w["top_decade"]:
        facts.add_row("Favourite era", f"the {w['top_decade']}s")
    if w["top_platform"]:
        facts.add_row("Main platform", str(w["top_platform"]))
    a = w["audio_profile"]
    if a["coverage"]:
        facts.add_row("Sound", f"energy {a['energy']:.2f}, danceability {a['danceability']:.2f}, "
                               f"valence {a['valence']:.2f} (coverage {_pct(a['coverage'])})")
    console.print(facts)


def register(app: typer.Typer) -> None:
    @app.command("insights")
    def insights_cmd(
        ctx: typer.Context,
        user: str = typer.Option(..., "--user", "-u", help="Listener handle (see `tunelake users`)"),
        period: str = typer.Option(None, "--period", "-p", help="YYYY, YYYY-MM, YYYY-Qn or all (default)"),
        fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
    ) -> None:
        """A Wrapped-style summary of one listener: top artists/tracks/genres, habits, streaks, discovery."""
        from tunelake.analytics.insights import wrapped
        from tunelake.cli.common import console, workspace
        from tunelake.warehouse.store import open_warehouse

        con = open_warehouse(workspace(ctx))
        try:
            w = wrapped(con, user, period)
        finally:
            con.close()
        if fmt == "json":
            import json

            console.print_json(json.dumps(w, default=str))
        else:
            _print_wrapped(w)

    @app.command("segment")
    def segment_cmd(
        ctx: typer.Context,
        k: str = typer.Option("auto", "--k", help="Number of segments, or auto (best silhouette in 2–10)"),
        fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json"),
    ) -> None:
        """Compute user features and K-means listener segments; writes user_features, user_segment,
        segment_profile and segment_selection into the warehouse."""
        from tunelake.analytics.features import update_features, write_features
        from tunelake.analytics.steps import run_segments, truth_file
        from tunelake.cli.common import console, emit, progress_bar, workspace
        from tunelake.errors import InputError
        from tunelake.warehouse.store import warehouse_writer

        if k != "auto" and not (k.isdigit() and int(k) >= 1):
            raise InputError(f"bad --k {k!r}", field="k", hint="use auto or a whole number ≥ 1")
        ws = workspace(ctx)
        from datetime import UTC, datetime

        run_id = "segment-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        with progress_bar("Segmenting") as update, warehouse_writer(ws, "segment") as con:
            update(0, 2, "features")
            features, _ = update_features(con)
            write_features(con, features, run_id)
            update(1, 2, "segments")
            info, _ = run_segments(con, features, run_id, k=k if k == "auto" else int(k), truth=truth_file(ws),
                                   engine=ws.settings.engine)
            selection = con.execute("SELECT k, silhouette, inertia, calinski_harabasz, chosen FROM segment_selection "
                                    "ORDER BY k").df() if info.get("rows") else None
            update(2, 2, "done")
        if fmt == "json":
            emit([info], "json")
            return
        if selection is None:
            console.print(info["summary"])
            return
        rows = [{"k": int(r.k), "silhouette": f"{r.silhouette:.3f}", "inertia": f"{r.inertia:,.0f}",
                 "calinski_harabasz": f"{r.calinski_harabasz:,.1f}", "chosen": "◀" if r.chosen else ""}
                for r in selection.itertuples()]
        emit(rows, fmt, title="k-scan")
        emit([{"segment": s, "name": n, "listeners": info["sizes"][s]} for s, n in info["names"].items()], fmt,
             title="Segments")
        if fmt == "table":
            console.print(info["summary"])

    @app.command("recommend")
    def recommend_cmd(
        ctx: typer.Context,
        user: str = typer.Option(None, "--user", "-u", help="Listener handle; omit to show the evaluation only"),
        n: int = typer.Option(20, "--n", help="How many tracks"),
        method: str = typer.Option(None, "--method", "-m",
                                   help="popularity, segment, content or als (default: the evaluation's default — "
                                        "popularity unless a method beats it with confidence)"),
        evaluate_: bool = typer.Option(False, "--evaluate", help="Re-run the offline evaluation and store it"),
        push: bool = typer.Option(False, "--push", help="Save the list to the user's Spotify as a playlist"),
        playlist: str = typer.Option("tunelake recommendations", "--name", help="Playlist name for --push"),
        fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json"),
    ) -> None:
        """Recommend tracks the listener has not played yet, each with a reason; --push sends them to Spotify."""
        from tunelake.analytics.insights import resolve_user, table_exists
        from tunelake.analytics.recommend import METHODS, recommend_for_user
        from tunelake.analytics.steps import run_recommendations
        from tunelake.cli.common import console, emit, progress_bar, workspace
        from tunelake.errors import InputError, TunelakeError
        from tunelake.warehouse.store import open_warehouse, warehouse_writer

        if method is not None and method not in METHODS:
            raise InputError(f"unknown method {method!r}", field="method", hint=f"one of {', '.join(METHODS)}")
        if n < 1:
            raise InputError("--n must be at least 1", field="n", hint="e.g. --n 20")
        ws = workspace(ctx)
        con = open_warehouse(ws)
        needs_eval = evaluate_ or not table_exists(con, "rec_evaluation")
        con.close()
        if needs_eval:
            from datetime import UTC, datetime

            run_id = "recommend-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            with progress_bar("Evaluating recommenders") as update, warehouse_writer(ws, "recommend") as wcon:
                update(0, 1, "evaluation")
                segs = (wcon.execute("SELECT user_key, segment, segment_name FROM user_segment").df()
                        if table_exists(wcon, "user_segment") else None)
                run_recommendations(wcon, run_id, segs, settings=ws.settings)
                update(1, 1, "done")
        con = open_warehouse(ws)
        try:
            if user is None:
                ev = con.execute("""SELECT method, ndcg_at_k, ndcg_low, ndcg_high, recall_at_k, map_at_k, coverage,
                                           novelty, diversity, delta_low, delta_high, users, params, is_default,
                                           decision, split
                                    FROM rec_evaluation ORDER BY is_default DESC, ndcg_at_k DESC NULLS LAST""").df()
                nums = ("ndcg_at_k", "ndcg_low", "ndcg_high", "recall_at_k", "map_at_k", "coverage", "novelty",
                        "diversity", "delta_low", "delta_high")
                rows = [{**{c: v for c, v in r.items() if c != "split"},
                         **{c: None if r[c] is None or r[c] != r[c] else round(r[c], 4) for c in nums}}
                        for r in ev.to_dict("records")]
                split = ev["split"].iloc[0] if len(ev) else ""
                title = f"Offline evaluation (@10; {split}; [95% bootstrap interval over listeners])"
                if fmt != "table":
                    emit(rows, fmt, title=title)
                    return
                num = lambda v, f="{:.3f}": "–" if v is None else f.format(v)  # noqa: E731 - "–": no data, never 0
                span = lambda lo, hi, f="{:.3f}": "" if lo is None else f" [{num(lo, f)}, {num(hi, f)}]"  # noqa: E731
                emit([{"method": r["method"], "NDCG@10": num(r["ndcg_at_k"]) + span(r["ndcg_low"], r["ndcg_high"]),
                       "recall@10": num(r["recall_at_k"]), "MAP@10": num(r["map_at_k"]),
                       "coverage": num(r["coverage"], "{:.4f}"), "novelty": num(r["novelty"], "{:.2f}"),
                       "diversity": num(r["diversity"], "{:.2f}"),
                       "Δ vs popularity": "" if r["method"] == "popularity" else
                       "–" if r["delta_low"] is None else span(r["delta_low"], r["delta_high"], "{:+.3f}").strip(),
                       "listeners": r["users"], "default": "✓" if r["is_default"] else ""} for r in rows],
                     fmt, title=title)
                for r in rows:
                    console.print(f"{r['method']} {r['params']}: {r['decision']}", highlight=False)
                return
            user_key, handle = resolve_user(con, user)
            default = con.execute("SELECT method FROM rec_evaluation WHERE is_default").fetchone()[0]
            if (method in (None, default)) and n <= 20 and table_exists(con, "recommendations"):
                recs = con.execute("""SELECT r.rank, r.track_id, t.track_name, t.artist_name, r.score, r.method,
                                             r.reason
                                      FROM recommendations r LEFT JOIN dim_track t USING (track_id)
                                      WHERE r.user_key = ? AND r.rank <= ? ORDER BY r.rank""", [user_key, n]).df()
            else:
                recs = recommend_for_user(con, user_key, n, method or default)
        finally:
            con.close()
        rows = [{"rank": int(r["rank"]), "track": r["track_name"], "artist": r["artist_name"], "why": r["reason"],
                 "track_id": r["track_id"]} for r in recs.to_dict("records")]
        emit(rows if fmt != "table" else [{k: v for k, v in r.items() if k != "track_id"} for r in rows], fmt,
             title=f"For {handle} ({recs['method'].iloc[0] if len(recs) else method or default})")
        if push:
            try:
                from tunelake.sources.spotify.playlist import push_playlist
            except ImportError as exc:
                raise TunelakeError(f"pushing playlists needs the Spotify API module ({exc})",
                                    hint="pip install 'tunelake[api]' and run `tunelake auth login`") from None
            result = push_playlist(ws, handle, playlist, [r["track_id"] for r in rows])
            verb = "new" if result.get("created") else "updated"
            console.print(f"Pushed {result.get('tracks', len(rows))} tracks to the {verb} playlist “{playlist}” "
                          f"({result.get('playlist_id', '')})", highlight=False)
