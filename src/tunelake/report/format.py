"""How values and summaries read, the same on the dashboard and in the report (the dashboard uses these too)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def format_cell(v: Any, fmt: str | None = None) -> str:
    """Empty for missing values, ✓ for true, the column's format when given, thousands separators otherwise."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "✓" if v else ""
    if fmt:
        try:
            return format(v, fmt)
        except (TypeError, ValueError):
            return str(v)
    if isinstance(v, float):
        return f"{v:,.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def profile_summary(prof: pd.DataFrame, top: int = 4) -> pd.DataFrame:
    """One row per segment from segment_profile: size, share and its most distinctive features (largest |z|)."""
    rows = []
    for (seg, name), part in prof.groupby(["segment", "segment_name"], sort=True):
        part = part.reindex(part["z_score"].abs().sort_values(ascending=False).index).head(top)
        traits = ", ".join(f"{f} {z:+.1f}σ" for f, z in zip(part["feature"], part["z_score"], strict=True))
        rows.append({"segment": int(seg), "name": name, "listeners": int(part["size"].iloc[0]),
                     "share": float(part["share"].iloc[0]), "most distinctive (z-score)": traits})
    return pd.DataFrame(rows)


def gate_summary(quality: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last run's quality gates: one row per check (tables checked, passed, not passed, failing rows) with
    problems first, and the individual results that did not pass."""
    if quality.empty:
        return quality, quality
    if "run_id" in quality.columns and "checked_at" in quality.columns:
        last = quality.sort_values("checked_at")["run_id"].iloc[-1]
        quality = quality[quality["run_id"] == last]
    q = quality.assign(check=quality["check_name"].astype(str).str.split(":").str[0],
                       ok=quality["status"].astype(str).str.lower().isin(["pass", "ok", "passed"]))
    summary = q.groupby("check", sort=True).agg(tables=("table_name", "nunique"), passed=("ok", "sum"),
                                                not_passed=("ok", lambda s: int((~s).sum())),
                                                failing_rows=("failing_rows", "sum")).reset_index()
    summary = summary.sort_values(["not_passed", "check"], ascending=[False, True]).reset_index(drop=True)
    summary = summary.astype({"passed": int, "not_passed": int, "failing_rows": int})
    failed = q.loc[~q["ok"], ["check_name", "table_name", "status", "failing_rows"]
                   + (["sample_keys"] if "sample_keys" in q.columns else [])]
    return summary, failed.reset_index(drop=True)
