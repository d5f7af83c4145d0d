"""`tunelake consent`, `tunelake compare`, `tunelake wrapped`: what a listener shares, two listeners side by side,
and a year in review with its shareable card. Thin wrappers over tunelake.analytics.{consent,compare,wrapped}."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tunelake.cli.common import console, emit, workspace

consent_app = typer.Typer(help="What each listener agrees to share (comparing with another listener).",
                          no_args_is_help=True)
DASH = "–"


def _pct(x: float | None) -> str:
    return DASH if x is None else f"{x:.0%}"


@consent_app.command("grant")
def consent_grant(ctx: typer.Context,
                  user: str = typer.Option(..., "--user", "-u", help="Listener handle agreeing")) -> None:
    """Agree to be compared with other listeners of this workspace (`tunelake compare`, the dashboard)."""
    from tunelake.analytics.consent import set_consent

    set_consent(workspace(ctx), user, "compare", True)
    console.print(f"{user} agreed to be compared (revoke with `tunelake consent revoke --user {user}`)",
                  highlight=False)


@consent_app.command("revoke")
def consent_revoke(ctx: typer.Context,
                   user: str = typer.Option(..., "--user", "-u", help="Listener handle withdrawing")) -> None:
    """Withdraw the agreement; comparisons involving the listener are refused from now on."""
    from tunelake.analytics.consent import set_consent

    set_consent(workspace(ctx), user, "compare", False)
    console.print(f"{user} no longer agrees to be compared", highlight=False)


@consent_app.command("show")
def consent_show(ctx: typer.Context, fmt: str = typer.Option("table", "--format", "-f",
                                                             help="table, csv or json")) -> None:
    """Every listener of the workspace and whether they agreed to be compared."""
    from tunelake.analytics.consent import consent
    from tunelake.lake.manifest import list_users

    lake = workspace(ctx).lake
    rows = []
    for u in sorted(list_users(lake), key=lambda u: u["handle"]):
        c = consent(lake, u["handle"]).get("compare", {})
        rows.append({"user": u["handle"], "compare": "yes" if c.get("granted") else "no",
                     "changed_at": c.get("changed_at", "")})
    emit(rows, fmt, title="Consent")


def _print_compare(r: dict[str, Any]) -> None:
    from rich.panel import Panel

    a, b = r["a"]["handle"], r["b"]["handle"]
    genre = DASH if r["genre_cosine"] is None else f"{r['genre_cosine']:.2f}"
    console.print(Panel(f"[bold green]{r['score']}[/]/100 · {r['label']}\n{r['explanation']}\n"
                        f"Genre match (cosine over genre shares): {genre}",
                        title=f"[bold]{a} × {b}[/]", expand=False), highlight=False)
    if r["shared_artists"]:
        emit([{"artist": x["artist_name"], f"share of {a}": _pct(x["share_a"]), f"share of {b}": _pct(x["share_b"]),
               "part of the score": _pct(x["part_of_score"])} for x in r["shared_artists"]], "table",
             title="Shared artists")
    if r["shared_tracks"]:
        emit([{"track": t["track_name"], "artist": t["artist_name"], f"streams {a}": t["streams_a"],
               f"streams {b}": t["streams_b"]} for t in r["shared_tracks"]], "table", title="Shared tracks")
    for who, other, key in ((a, b, "for_a"), (b, a, "for_b")):
        tracks = r[key]["tracks"]
        if tracks:
            emit([{"track": t["track_name"], "artist": t["artist_name"],
                   "": "new artist" if t["new_artist"] else ""} for t in tracks], "table",
                 title=f"{who} might try (from {other}'s favourites)")
        else:
            console.print(f"{who} has already played all of {other}'s favourites", highlight=False)


def compare_cmd(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="First listener handle"),
    b: str = typer.Argument(..., help="Second listener handle"),
    period: str = typer.Option(None, "--period", "-p", help="YYYY, YYYY-MM, YYYY-Qn or all (default)"),
    half_life: str = typer.Option("365", "--half-life", help="Recency half-life in days, or none (no weighting)"),
    n: int = typer.Option(5, "--n", min=1, help="How many shared items and suggestions"),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """How compatible two listeners' taste is, and why; shared artists and tracks; what each might try from the
    other. Both must have agreed (`tunelake consent grant --user NAME`)."""
    from tunelake.analytics.compare import compare_with_consent
    from tunelake.analytics.insights import period_range
    from tunelake.errors import InputError
    from tunelake.warehouse.store import open_warehouse

    if half_life.lower() == "none":
        hl: float | None = None
    else:
        try:
            hl = float(half_life)
        except ValueError:
            raise InputError(f"bad --half-life {half_life!r}", field="half-life",
                             hint="a number of days, e.g. 365, or none") from None
    start, end = period_range(period)
    ws = workspace(ctx)
    con = open_warehouse(ws)
    try:
        r = compare_with_consent(ws.lake, con, a, b, half_life_days=hl, start=start, end=end, n=n)
    finally:
        con.close()
    if fmt == "json":
        import json

        console.print_json(json.dumps(r, default=str))
    else:
        _print_compare(r)


def _print_review(r: dict[str, Any]) -> None:
    from tunelake.report.card import card_lines

    t = card_lines(r)
    console.print(f"[bold]{t['title']}[/]\n[bold green]{t['minutes']}[/] {t['sub']}\n{t['personality']}"
                  + (f" ({t['traits']})" if t["traits"] else ""), highlight=False)
    emit([{"#": i + 1, "artist": a, "track": tr} for i, (a, tr) in
          enumerate(zip(t["artists"] + [""] * 5, t["tracks"] + [""] * 5, strict=True)) if a or tr][:5],
         "table", title="Top 5")
    rows = [("Top genres", t["genres"]), *t["facts"], *(("· " + k, v) for k, v in t["beyond"])]
    emit([{"": k, " ": v} for k, v in rows], "table", title="The year (· what Wrapped never shows)")


def wrapped_cmd(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Listener handle"),
    year: int = typer.Option(None, "--year", "-y", help="Calendar year (default: the last year with listening)"),
    out: Path = typer.Option(None, "--out", "-o", help="Write the shareable card: a .png or .svg file"),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """Year in review: minutes, top 5 artists/tracks/genres, listener type, biggest day, longest streak,
    discovery, the year before, and what Wrapped never shows (skips, completion, sessions, podcasts)."""
    from tunelake.analytics.insights import resolve_user
    from tunelake.analytics.wrapped import year_in_review, years
    from tunelake.errors import InputError
    from tunelake.warehouse.store import open_warehouse

    fmt_out = None
    if out is not None:
        fmt_out = out.suffix.lower().lstrip(".")
        if fmt_out not in ("png", "svg"):
            raise InputError(f"cannot write a card as {out.name!r}", field="out", hint="name a .png or .svg file")
    con = open_warehouse(workspace(ctx))
    try:
        if year is None:
            have = years(con, resolve_user(con, user)[0])
            if not have:
                raise InputError(f"{user} has no music plays", field="user", hint="import their history first")
            year = have[-1]
        r = year_in_review(con, user, year)
    finally:
        con.close()
    if out is not None:
        from tunelake.report.card import render_card

        data = render_card(r, fmt_out or "png")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    if fmt == "json":
        import json

        console.print_json(json.dumps(r, default=str))
    else:
        _print_review(r)
    if out is not None:
        console.print(f"Card written to {out}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")
    app.command("compare")(compare_cmd)
    app.command("wrapped")(wrapped_cmd)
