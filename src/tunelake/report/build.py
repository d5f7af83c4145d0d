"""The project report: one self-contained HTML file (every figure a base64 PNG drawn with Matplotlib/Seaborn on
the Agg backend), optionally printed to PDF by headless Chromium or WeasyPrint.

Numbers come from the metric layer (`tunelake.analytics.insights`) and the analytics/meta tables, exactly as the
dashboard shows them; key figures are also written as `data-value` attributes so a test can compare them with
SQL without parsing formatted text.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tunelake import __version__
from tunelake.errors import TunelakeError
from tunelake.report.format import format_cell, gate_summary, profile_summary
from tunelake.workspace import Workspace

TEMPLATES = Path(__file__).parent / "templates"
GREEN, BLUE, PINK, ORANGE, GREY = "#1db954", "#2e77d0", "#e8115b", "#f59b23", "#6a6a6a"
SECTIONS = (("summary", "Summary"), ("architecture", "Architecture"), ("data", "Data inventory and quality"),
            ("listening", "Listening insights"), ("segmentation", "Segmentation"),
            ("recommendations", "Recommendations"), ("methods", "Methods and definitions"),
            ("schema", "Schema appendix"))


# --- figures ----------------------------------------------------------------------------------------------------

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette=[GREEN, BLUE, PINK, ORANGE, "#9b59b6", GREY])
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold",
                         "axes.titlesize": 12, "font.size": 10})
    return plt


def png(fig: Any) -> str:
    """A figure as a data: URI (and the figure closed, so a long report does not hold every figure in memory)."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def architecture_figure() -> str:
    """The data flow as boxes and arrows: sources → lake → warehouse → analytics → consumers."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    plt = _plt()
    fig, ax = plt.subplots(figsize=(12.5, 4.6))
    ax.set_xlim(0, 125)
    ax.set_ylim(0, 46)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, title: str, body: str, color: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.4,rounding_size=1.5", linewidth=1.4,
                                    edgecolor=color, facecolor=color + "22"))
        ax.text(x + w / 2, y + h - 2.6, title, ha="center", va="top", fontsize=10.5, fontweight="bold", color="#222")
        ax.text(x + w / 2, y + h - 7.2, body, ha="center", va="top", fontsize=8.3, color="#333", linespacing=1.35)

    def arrow(x1: float, y1: float, x2: float, y2: float, label: str = "") -> None:
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=14, linewidth=1.4,
                                     color="#444"))
        if label:
            ax.text((x1 + x2) / 2, (y1 + y2) / 2 + 1.3, label, ha="center", fontsize=7.5, color=GREY)

    box(1, 26, 19, 18, "Sources", "Spotify Web API\n(Spotipy, OAuth)\nprivacy exports\n(zip / folder)\ncatalogue CSV",
        GREY)
    box(1, 3, 19, 17, "Synthetic world", "deterministic\nlisteners + exports\nfake Spotify API\n(tests, demo)",
        GREY)
    box(25, 8, 21, 36, "Lake", "fsspec: folder,\naz:// abfs://\n\nraw (as received,\nimmutable)\n\ncurated (typed,\n"
        "dedup'd Parquet)\n\nquarantine\n(reason codes)\n+ manifest", BLUE)
    box(51, 8, 21, 36, "Warehouse", "star schema\nfact_play, dims,\nbridges, aggregates\n\nDuckDB (default)\n"
        "Apache Spark\n(scale-out)\n\nquality gates,\nrun log", GREEN)
    box(77, 8, 19, 36, "Analytics", "insights (metric\nlayer)\n\nfeatures\nK-means segments\n\nrecommenders +\n"
        "offline evaluation", ORANGE)
    box(101, 31, 22, 13, "Dashboard", "Dash + Plotly\n(read-only)", PINK)
    box(101, 16, 22, 12, "Report", "this document\n(HTML / PDF)", PINK)
    box(101, 1, 22, 12, "Synapse / Power BI", "T-SQL DDL, COPY INTO,\ngold Parquet, PBIP", PINK)
    arrow(20, 35, 25, 30)
    ax.text(22.5, 38, "import\npull", ha="center", fontsize=7.5, color=GREY)
    arrow(20, 12, 25, 18)
    arrow(46, 26, 51, 26, "SQL models")
    arrow(72, 26, 77, 26)
    arrow(96, 30, 101, 37)
    arrow(96, 24, 101, 22)
    arrow(72, 12, 101, 7, "export")
    ax.set_title("tunelake: Spotify data → lake → warehouse → analytics → dashboard · report · Synapse", loc="left")
    return png(fig)


def _bar(series: pd.Series, title: str, xlabel: str = "", color: str = GREEN, horizontal: bool = True,
         fmt: str = "{:,.0f}", size: tuple[float, float] = (6.4, 3.8)) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=size)
    if horizontal:
        s = series.iloc[::-1]
        ax.barh([str(i) for i in s.index], s.values, color=color)
        for i, v in enumerate(s.values):
            ax.text(v, i, " " + fmt.format(v), va="center", fontsize=8)
        ax.set_xlabel(xlabel)
    else:
        ax.bar([str(i) for i in series.index], series.values, color=color)
        ax.set_ylabel(xlabel)
        ax.tick_params(axis="x", rotation=35)
    ax.set_title(title, loc="left")
    return png(fig)


# --- data -------------------------------------------------------------------------------------------------------

def _table_or_empty(con: Any, name: str, order: str = "") -> pd.DataFrame:
    from tunelake.analytics.insights import table_exists

    if not table_exists(con, name):
        return pd.DataFrame()
    return con.execute(f"SELECT * FROM {name} {'ORDER BY ' + order if order else ''}").df()


def _html_table(df: pd.DataFrame, formats: dict[str, str] | None = None, table_id: str = "",
                max_rows: int = 60) -> str:
    """A small HTML table with escaped cells (the report is a file people open; no markup from data)."""
    from markupsafe import escape

    formats = formats or {}
    if df.empty:
        return '<p class="muted">No rows.</p>'

    def cell(col: str, v: Any) -> str:
        return format_cell(v, formats.get(col))
        if isinstance(v, float):
            return f"{v:,.3f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell(c, v))}</td>" for c, v in zip(df.columns, row, strict=True))
                   + "</tr>" for row in df.head(max_rows).itertuples(index=False))
    more = f'<p class="muted">… {len(df) - max_rows:,} more rows</p>' if len(df) > max_rows else ""
    id_attr = f' id="{escape(table_id)}"' if table_id else ""
    return f'<table class="data"{id_attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}'

def _inventory(ws: Workspace, con: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from tunelake.lake.manifest import list_batches
    from tunelake.warehouse.tables import TABLES

    counts = []
    for name, spec in TABLES.items():
        from tunelake.analytics.insights import table_exists

        if table_exists(con, name):
            n = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            counts.append({"table": name, "kind": spec.kind, "rows": int(n), "grain": spec.grain})
    batches = [asdict(b) | {"quarantined_total": b.quarantined_total} for b in list_batches(ws.lake)]
    bdf = pd.DataFrame(batches)
    by_source = pd.DataFrame()
    reasons: dict[str, int] = {}
    if not bdf.empty:
        by_source = bdf.groupby("source").agg(
            batches=("batch_id", "count"), read=("read", "sum"), accepted=("accepted", "sum"),
            duplicates=("duplicates", "sum"), merged=("merged", "sum"), quarantined=("quarantined_total", "sum"),
            not_music=("excluded", "sum")).reset_index()
        for q in bdf["quarantined"]:
            for reason, n in (q or {}).items():
                reasons[reason] = reasons.get(reason, 0) + int(n)

    quality, failed_gates = gate_summary(_table_or_empty(con, "meta_quality"))
    runs = _table_or_empty(con, "meta_run", "started_at DESC").drop(columns=["details"], errors="ignore").head(30)
    return {"counts": pd.DataFrame(counts), "by_source": by_source, "reasons": reasons, "quality": quality,
            "failed_gates": failed_gates,
            "runs": runs, "batches": len(bdf)}


def _listening(con: Any, figs: dict[str, str]) -> dict[str, Any]:
    from tunelake.analytics import insights as ins

    plt = _plt()
    f = ins.ALL
    out: dict[str, Any] = {}
    over = ins.listening_over_time(con, f, "week")
    if len(over):
        fig, ax = plt.subplots(figsize=(11, 3.4))
        ax.bar(pd.to_datetime(over["period"]), over["hours"], width=5.5, color=GREEN, label="hours")
        ax.set_ylabel("hours per week")
        ax2 = ax.twinx()
        ax2.plot(pd.to_datetime(over["period"]), over["listeners"], color=BLUE, marker="o", ms=3, label="listeners")
        ax2.set_ylabel("listeners")
        ax2.set_ylim(bottom=0)
        ax2.grid(False)
        ax.set_title("Listening over time (hours per ISO week; line: active listeners)", loc="left")
        figs["over_time"] = png(fig)
    arts = ins.top_artists(con, f, 12)
    if len(arts):
        figs["top_artists"] = _bar(arts.set_index("artist_name")["hours"], "Top artists by hours", "hours",
                                   fmt="{:,.1f}")
    gen = ins.top_genres(con, f, 12)
    if len(gen):
        figs["top_genres"] = _bar(gen.set_index("genre")["share"] * 100, "Top genres (% of hours)", "% of hours",
                                  color=PINK, fmt="{:.1f}%")
    tracks = ins.top_tracks(con, f, 10)
    out["top_tracks"] = tracks[["rank", "track_name", "artist_name", "plays", "hours", "listeners"]]
    heat = ins.hour_weekday_heatmap(con, f)
    if heat["plays"].sum():
        import seaborn as sns

        grid = heat.pivot(index="weekday", columns="hour", values="hours")
        grid.index = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][: len(grid)]
        fig, ax = plt.subplots(figsize=(11, 3.2))
        sns.heatmap(grid, cmap="Greens", ax=ax, cbar_kws={"label": "hours"})
        ax.set_xlabel("local hour")
        ax.set_ylabel("")
        ax.set_title("When listening happens (local hour × weekday)", loc="left")
        figs["heatmap"] = png(fig)
    sk = ins.skip_completion(con, f)
    if len(sk):
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        months = pd.to_datetime(sk["month"]).dt.strftime("%Y-%m")
        ax.plot(months, sk["skip_rate"], marker="o", color=PINK, label="skip rate")
        ax.plot(months, sk["mean_completion"], marker="o", color=GREEN, label="mean completion")
        ax.plot(months, sk["full_listen_rate"], marker="o", color=BLUE, label="full listens (≥ 90 %)")
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.legend(fontsize=8)
        ax.set_title("Skips and completion per month", loc="left")
        figs["skips"] = png(fig)
    plat = ins.platforms(con, f)
    if len(plat):
        figs["platforms"] = _bar(plat.set_index("platform")["share"] * 100, "Platforms (% of plays)", "% of plays",
                                 color=BLUE, fmt="{:.1f}%")
    era = ins.eras(con, f, by="decade")
    if len(era):
        figs["eras"] = _bar(pd.Series((era["share"] * 100).values, index=[f"{int(e)}s" for e in era["era"]]),
                            "Eras (release decade, % of plays)", "% of plays", color=ORANGE, horizontal=False)
    out["sessions"] = ins.session_stats(con, f)
    out["diversity"] = ins.diversity(con, f)
    out["mainstream"] = ins.mainstreamness(con, f)
    out["audio"] = ins.audio_profile(con, f)
    st = ins.streaks(con, f)
    out["longest_streak"] = int(st["days"].iloc[0]) if len(st) else 0
    disc = ins.discovery_rate(con, f)
    out["discovery"] = (float((disc["artist_discovery_rate"] * disc["plays"]).sum() / disc["plays"].sum())
                        if len(disc) and disc["plays"].sum() else None)
    return out


def _segmentation(con: Any, figs: dict[str, str]) -> dict[str, Any]:
    plt = _plt()
    seg = _table_or_empty(con, "user_segment")
    prof = _table_or_empty(con, "segment_profile")
    sel = _table_or_empty(con, "segment_selection", "k")
    out: dict[str, Any] = {"available": not seg.empty, "k": None, "silhouette": None, "stability": None,
                           "ari_truth": None,
                           "profiles": pd.DataFrame(), "selection": sel.drop(columns=["run_id"], errors="ignore")}
    if seg.empty:
        return out
    out["k"] = int(seg["segment"].nunique())
    if not sel.empty and "chosen" in sel.columns and sel["chosen"].any():
        chosen = sel[sel["chosen"].astype(bool)].iloc[0]
        out["k"] = int(chosen["k"])
        out["silhouette"] = float(chosen["silhouette"])
        for col in ("stability", "stability_ari"):
            if col in sel.columns:
                out["stability"] = float(chosen[col])
    details = _analytics_details(con)
    if out["stability"] is None:
        out["stability"] = _number(details.get("stability"))
    out["ari_truth"] = _number(details.get("ari_vs_truth", details.get("ari")))
    if not sel.empty:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        ax.plot(sel["k"], sel["silhouette"], marker="o", color=GREEN, label="silhouette (chooses k)")
        ax.set_xlabel("k")
        ax.set_ylabel("silhouette")
        if "inertia" in sel.columns:
            ax2 = ax.twinx()
            ax2.plot(sel["k"], sel["inertia"], marker="s", ls="--", color=GREY, label="inertia (elbow)")
            ax2.set_ylabel("inertia")
            ax2.grid(False)
        if out["k"] is not None:
            ax.axvline(out["k"], color=PINK, ls=":", label=f"chosen k = {out['k']}")
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title("Choice of k", loc="left")
        figs["k_choice"] = png(fig)
    names = seg.drop_duplicates("segment").set_index("segment")["segment_name"].to_dict()
    if {"x", "y"} <= set(seg.columns):
        import seaborn as sns

        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        labelled = seg.assign(label=[f"{s} · {names[s]}" for s in seg["segment"]]).sort_values("segment")
        sns.scatterplot(data=labelled, x="x", y="y", hue="label", s=40, ax=ax, edgecolor="white", linewidth=0.4)
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
        ax.legend(fontsize=7.5, loc="best", title="segment")
        ax.set_title("Listeners in 2-D (PCA of scaled features)", loc="left")
        figs["segment_map"] = png(fig)
    if not prof.empty:
        import seaborn as sns


        out["profiles"] = profile_summary(prof)
        grid = prof.pivot_table(index="segment", columns="feature", values="z_score", aggfunc="first")
        keep = grid.abs().max().sort_values(ascending=False).head(14).index
        grid = grid[keep]
        grid.index = [f"{s} · {names.get(s, '')}" for s in grid.index]
        fig, ax = plt.subplots(figsize=(11, 0.55 * len(grid) + 2.2))
        sns.heatmap(grid, cmap="RdBu_r", center=0, annot=True, fmt=".1f", ax=ax, cbar_kws={"label": "z-score"},
                    annot_kws={"fontsize": 7.5})
        ax.set_ylabel("")
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=35)
        ax.set_title("Segment profiles: feature z-scores against all listeners", loc="left")
        figs["profiles"] = png(fig)
    return out


def _analytics_details(con: Any) -> dict[str, Any]:
    """The latest analytics step's details from the run log (stability, agreement with planted types, …)."""
    runs = _table_or_empty(con, "meta_run", "started_at DESC")
    if runs.empty or "details" not in runs.columns:
        return {}
    for step, details in zip(runs["step"], runs["details"], strict=True):
        if step != "analytics" or not details:
            continue
        try:
            d = json.loads(details)
        except (TypeError, ValueError):
            continue
        if isinstance(d, dict):
            return {**(d.get("segments") if isinstance(d.get("segments"), dict) else {}), **d}
    return {}


def _number(value: Any) -> float | None:
    """A figure, or None (shown as "–") when there is none: missing, not a number, or NaN."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
    return float(value) if ok else None


def _recommendations(con: Any, figs: dict[str, str]) -> dict[str, Any]:
    """The evaluation as the report tells it: the default method, its test NDCG with its interval and the number
    of listeners behind it, and why it is the default. Nothing evaluated (``users`` 0) reads as unknown."""
    plt = _plt()
    ev = _table_or_empty(con, "rec_evaluation", "ndcg_at_k DESC NULLS LAST, method")
    out: dict[str, Any] = {"available": not ev.empty, "evaluation": pd.DataFrame(), "best": None,
                           "best_ndcg": None, "best_low": None, "best_high": None, "baseline_ndcg": None,
                           "k": None, "users": 0, "decision": None, "split": None}
    if ev.empty:
        return out
    best = ev[ev["is_default"].astype(bool)] if "is_default" in ev.columns and ev["is_default"].any() else ev.head(1)
    row = best.iloc[0]
    out["best"] = str(row["method"])
    out["users"] = int(row["users"]) if "users" in ev.columns else 0
    out["k"] = int(ev["k"].iloc[0]) if "k" in ev.columns else 10
    out["decision"], out["split"] = row.get("decision"), row.get("split")
    if out["users"]:
        out["best_ndcg"] = _number(row["ndcg_at_k"])
        out["best_low"], out["best_high"] = _number(row.get("ndcg_low")), _number(row.get("ndcg_high"))
        pop = ev[ev["method"] == "popularity"]
        out["baseline_ndcg"] = _number(pop["ndcg_at_k"].iloc[0]) if len(pop) else None
    view = ev.drop(columns=["run_id", "split"], errors="ignore").copy()
    for c in ("test_start_min", "test_start_max"):
        if c in view.columns:
            view[c] = view[c].astype(str).str.slice(0, 10).replace({"NaT": "", "None": ""})
    out["evaluation"] = view
    if not out["users"]:
        return out
    metrics = [c for c in ("recall_at_k", "ndcg_at_k", "map_at_k", "coverage", "diversity") if c in ev.columns]
    long = ev.melt(id_vars="method", value_vars=metrics, var_name="metric", value_name="value")
    long["metric"] = long["metric"].str.replace("_at_k", f"@{out['k']}")
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(9, 3.6))
    sns.barplot(data=long, x="metric", y="value", hue="method", ax=ax)
    ax.set_xlabel("")
    ax.set_title("Offline evaluation by method (time split)", loc="left")
    figs["rec_eval"] = png(fig)
    recs = _table_or_empty(con, "recommendations")
    if not recs.empty:
        first_user = recs["user_key"].iloc[0]
        sample = recs[recs["user_key"] == first_user].sort_values("rank").head(10)
        names = con.execute("SELECT track_id, track_name, artist_name FROM dim_track WHERE track_id IN "
                            "(SELECT unnest(?))", [list(sample["track_id"])]).df()
        handle = con.execute("SELECT handle FROM dim_user WHERE user_key = ?", [int(first_user)]).fetchone()
        out["sample_user"] = handle[0] if handle else str(first_user)
        out["sample"] = sample.merge(names, on="track_id", how="left")[
            ["rank", "track_name", "artist_name", "score", "method", "reason"]]
    return out


def _schema() -> list[dict[str, Any]]:
    from tunelake.warehouse.tables import TABLES

    out = []
    for t in TABLES.values():
        cols = pd.DataFrame([{"column": c.name, "type": c.type, "nullable": "yes" if c.nullable else "no",
                              "description": c.description + (f" (→ {c.references})" if c.references else "")}
                             for c in t.columns])
        out.append({"name": t.name, "kind": t.kind, "layer": t.layer, "grain": t.grain,
                    "description": t.description, "key": ", ".join(t.primary_key),
                    "distribution": t.distribution, "columns": _html_table(cols, max_rows=500)})
    return out


# --- the report ---------------------------------------------------------------------------------------------------

def build_context(ws: Workspace, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Everything the template shows (figures as data URIs)."""
    from tunelake.analytics import insights as ins
    from tunelake.warehouse.store import open_warehouse, read_pointer

    say = progress or (lambda s: None)
    figs: dict[str, str] = {}
    con = open_warehouse(ws)
    try:
        say("summary")
        k = ins.kpis(con)
        say("architecture")
        figs["architecture"] = architecture_figure()
        say("data inventory")
        inv = _inventory(ws, con)
        if inv["reasons"]:
            figs["quarantine"] = _bar(pd.Series(inv["reasons"]).sort_values(ascending=False),
                                      "Quarantined records by reason", "records", color=PINK)
        say("listening insights")
        listening = _listening(con, figs)
        say("segmentation")
        segmentation = _segmentation(con, figs)
        say("recommendations")
        recs = _recommendations(con, figs)
    finally:
        con.close()
    pointer = read_pointer(ws) or {}
    return {
        "version": __version__, "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "workspace": str(ws.root), "warehouse": pointer.get("file", ""), "engine": ws.settings.engine,
        "sections": SECTIONS, "k": k, "figs": figs, "inv": inv, "listening": listening, "seg": segmentation,
        "recs": recs, "schema": _schema(), "settings": ws.settings, "table": _html_table,
        "stream_s": ws.settings.stream_threshold_ms / 1000, "gap_min": ws.settings.session_gap_minutes,
    }


def render_html(context: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["j2", "html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v, fmt="{:,}": "–" if v is None else fmt.format(v)
    env.filters["pct"] = lambda v, digits=1: "–" if v is None else f"{v * 100:.{digits}f} %"
    return env.get_template("report.html.j2").render(**context)


def write_report(ws: Workspace, out: str | Path, pdf: bool = False,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Write the report HTML to `out` (and `out` with .pdf when asked); returns the HTML path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(build_context(ws, progress))
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    if pdf:
        write_pdf(out, out.with_suffix(".pdf"))
    return out


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def write_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Print the HTML to PDF with headless Chromium, else WeasyPrint; a clear error when neither is installed."""
    chromium = find_chromium()
    if chromium:
        with tempfile.TemporaryDirectory(prefix="tunelake-pdf-") as profile:
            cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}",
                   html_path.resolve().as_uri()]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if proc.returncode == 0 and pdf_path.exists() and pdf_path.stat().st_size > 0:
            return pdf_path
        raise TunelakeError(f"Chromium could not print {html_path} to PDF: {proc.stderr.strip()[-300:]}",
                            hint="open the HTML report in a browser and print it, or install WeasyPrint")
    try:
        from weasyprint import HTML  # type: ignore[import-not-found]
    except ImportError:
        raise TunelakeError(
            "no PDF renderer: neither headless Chromium nor WeasyPrint is installed",
            hint="install one (`apt-get install chromium` or `pip install weasyprint`), or print the HTML report "
                 f"{html_path} from a browser",
        ) from None
    HTML(filename=str(html_path)).write_pdf(str(pdf_path))
    return pdf_path
