"""The shareable Year-in-review card: one 1080 × 1350 px image (PNG or SVG) drawn with Matplotlib from the
dict `tunelake.analytics.wrapped.year_in_review` returns.

Drawn on a bare `matplotlib.figure.Figure` (no pyplot), so the dashboard can render cards from several request
threads without sharing pyplot's global state. Unknown figures print as "–", never as 0; the SVG keeps its text
as text and carries no date, so the same review gives the same file.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

BG, FG, DIM, GREEN, PANEL = "#121212", "#ffffff", "#b3b3b3", "#1db954", "#242424"
WIDTH_IN, HEIGHT_IN, DPI = 7.2, 9.0, 150  # 1080 × 1350 px: the 4:5 portrait that social apps show uncropped
FORMATS = ("png", "svg")
DASH = "–"


def _cut(text: Any, n: int = 30) -> str:
    s = DASH if text is None else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return DASH
    return f"{x:+.0%}" if signed else f"{x:.0%}"


def _day(d: date | None) -> str:
    return DASH if d is None else f"{d:%a} {d.day} {d:%b}"


def card_lines(r: dict[str, Any]) -> dict[str, Any]:
    """The card's text, worked out apart from the drawing (so it is easy to test and to reuse)."""
    p = r.get("personality")
    day, streak, disc, prev = r["biggest_day"], r["longest_streak"], r["discovery"], r["previous_year"]
    b = r["beyond_wrapped"]
    s, pod = b["sessions"], b["podcasts"]
    genres = " · ".join(f"{g['genre']} {_pct(g['share'])}" for g in r["top_genres"][:3]) or DASH
    new = f"{disc['new_artists']:,} new artists ({_pct(disc['artist_discovery_rate'])} of plays)"
    if disc["first_year"]:
        new += ", your first year"
    if prev:
        versus = (f"{_pct(prev['minutes_change'], signed=True)} minutes vs {prev['year']}"
                  f" (top artist then: {_cut(prev['top_artist'], 22)})")
    else:
        versus = f"no listening in {r['year'] - 1} to compare with"
    median = s.get("median_minutes")
    return {
        "title": f"{_cut(r['handle'], 24)} · {r['year']} in review",
        "minutes": f"{round(r['minutes']):,}",
        "sub": f"minutes of music · {r['plays']:,} plays · {r['distinct_artists']:,} artists · "
               f"{r['active_days']:,} days",
        "personality": (f"You listen like: {p['name']}" if p else f"Listener type: {DASH} (no segments yet)"),
        "traits": (", ".join(f"{t['feature'].replace('_', ' ')} {t['z_score']:+.1f}σ" for t in p["traits"])
                   if p else ""),
        "artists": [_cut(a["artist_name"]) for a in r["top_artists"]],
        "tracks": [_cut(t["track_name"]) for t in r["top_tracks"]],
        "genres": genres,
        "facts": [
            ("Biggest day", f"{_day(day['date'])} · {day['minutes']:,.0f} min" if day else DASH),
            ("Longest streak", f"{streak['days']} days ({_day(streak['start'])} → {_day(streak['end'])})"
             if streak else DASH),
            ("Discovery", new),
            ("Year before", versus),
        ],
        "beyond": [
            ("Skips", f"{b['skips']:,} ({_pct(b['skip_rate'])})" if b["skips"] is not None
             else f"{DASH} (this history does not record skips)"),
            ("Completion", f"{_pct(b['mean_completion'])} mean, {_pct(b['full_listen_rate'])} heard to the end"),
            ("Sessions", f"{s['sessions']:,}, median {DASH if median is None else f'{median:.0f}'} min"),
            ("Podcasts", f"{pod['minutes']:,.0f} min, {pod['shows']} shows" +
             (f" (most: {_cut(pod['top_show'], 20)})" if pod["top_show"] else "") if pod["plays"] else "none"),
        ],
    }


def render_card(review: dict[str, Any], fmt: str = "png") -> bytes:
    """The card as PNG or SVG bytes; ConfigError naming the extra to install when Matplotlib is missing."""
    from tunelake.errors import ConfigError, InputError

    if fmt not in FORMATS:
        raise InputError(f"unknown card format {fmt!r}", field="format", hint="png or svg")
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyBboxPatch
    except ImportError as exc:
        raise ConfigError(f"drawing the card needs Matplotlib ({exc})", hint="pip install 'tunelake[report]'") from None
    t = card_lines(review)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor=BG)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")

    def text(x: float, y: float, s: str, size: float, color: str = FG, weight: str = "normal", **kw: Any) -> None:
        ax.text(x, y, s, fontsize=size, color=color, fontweight=weight, va="top", family="DejaVu Sans", **kw)

    text(0.07, 0.955, t["title"], 15, DIM)
    text(0.07, 0.915, t["minutes"], 54, GREEN, "bold")
    text(0.07, 0.815, t["sub"], 10.5, DIM)
    text(0.07, 0.77, t["personality"], 14, FG, "bold")
    text(0.07, 0.735, t["traits"], 9.5, DIM)
    for x, title, items in ((0.07, "Top artists", t["artists"]), (0.53, "Top tracks", t["tracks"])):
        text(x, 0.69, title, 12, GREEN, "bold")
        for i, item in enumerate(items or [DASH]):
            text(x, 0.655 - i * 0.034, f"{i + 1}  {item}" if items else item, 11.5)
    text(0.07, 0.47, "Top genres", 12, GREEN, "bold")
    text(0.07, 0.44, t["genres"], 11.5)
    for i, (k, v) in enumerate(t["facts"]):
        y = 0.39 - i * 0.036
        text(0.07, y, k, 10.5, DIM)
        text(0.30, y, v, 10.5)
    ax.add_patch(FancyBboxPatch((0.05, 0.035), 0.90, 0.205, boxstyle="round,pad=0,rounding_size=0.02",
                                facecolor=PANEL, edgecolor="none"))
    text(0.08, 0.225, "What Wrapped never shows", 12, GREEN, "bold")
    for i, (k, v) in enumerate(t["beyond"]):
        y = 0.185 - i * 0.036
        text(0.08, y, k, 10.5, DIM)
        text(0.30, y, v, 10.5)
    text(0.93, 0.985, "tunelake", 9, DIM, ha="right")
    buf = io.BytesIO()
    import matplotlib  # imported above, so present

    # explicit, whatever the process's rcParams say (the report sets savefig.bbox = tight, which would crop)
    rc = {"savefig.bbox": "standard", "savefig.pad_inches": 0, "svg.fonttype": "none", "svg.hashsalt": "tunelake"}
    with matplotlib.rc_context(rc):
        fig.savefig(buf, format=fmt, dpi=DPI, facecolor=BG,
                    metadata={"Date": None} if fmt == "svg" else {"Software": None})
    return buf.getvalue()
