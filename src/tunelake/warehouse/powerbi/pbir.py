"""The report in PBIR, the folder-of-JSON format of a Power BI report: six pages that mirror the dashboard's
(Overview, Listening patterns, Taste, Segments, Recommendations, Data quality), each visual bound to the model's
measures and columns.

A field is written `Measure Name` (a registry measure; its home table is looked up) or `table.column`. Every file
names the `$schema` it follows; the tests validate each against Microsoft's published schemas.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from tunelake.warehouse.metrics import metric

SCHEMA = "https://developer.microsoft.com/json-schemas/fabric/item/report/definition"
VISUAL_SCHEMA = f"{SCHEMA}/visualContainer/2.4.0/schema.json"
PAGE_SCHEMA = f"{SCHEMA}/page/2.0.0/schema.json"
PAGES_SCHEMA = f"{SCHEMA}/pagesMetadata/1.1.0/schema.json"
REPORT_SCHEMA = f"{SCHEMA}/report/3.0.0/schema.json"
VERSION_SCHEMA = f"{SCHEMA}/versionMetadata/1.0.0/schema.json"
PBIR_SCHEMA = "https://developer.microsoft.com/json-schemas/fabric/item/report/definitionProperties/2.0.0/schema.json"
WIDTH, HEIGHT = 1280, 720

# visual type → its data roles in order (the first is the category/axis, values come last)
ROLES = {"card": ("Values",), "lineChart": ("Category", "Y"), "clusteredBarChart": ("Category", "Y"),
         "clusteredColumnChart": ("Category", "Y"), "pivotTable": ("Rows", "Columns", "Values"),
         "tableEx": ("Values",), "slicer": ("Values",)}

TOP = 10  # the dashboard's top lists show ten

_SLICERS = (("slicer", (0, 0, 300, 60), {"Values": ["dim_date.date"]}),
            ("slicer", (310, 0, 300, 60), {"Values": ["dim_user.handle"]}))


def _cards(measures: list[str], y: int = 70) -> list[tuple[str, tuple[int, int, int, int], dict[str, list[str]]]]:
    w = WIDTH // len(measures)
    return [("card", (i * w, y, w - 10, 90), {"Values": [m]}) for i, m in enumerate(measures)]


# page display name → visuals: (type, (x, y, width, height), role → fields[, sorted by this measure, descending[,
# keeping only the top N of the first field by it]])
PAGES: tuple[tuple[str, list[tuple[Any, ...]]], ...] = (
    ("Overview", [
        *_SLICERS,
        *_cards(["Plays", "Streams", "Hours", "Listeners", "Distinct artists", "Distinct tracks", "Skip rate",
                 "Mean completion"]),
        ("lineChart", (0, 170, 1270, 250), {"Category": ["dim_date.month_start"], "Y": ["Hours", "Listeners"]}),
        ("clusteredBarChart", (0, 430, 420, 290), {"Category": ["dim_artist.artist_name"], "Y": ["Hours"]}, "Hours",
         TOP),
        ("clusteredBarChart", (430, 430, 420, 290), {"Category": ["dim_track.track_name"], "Y": ["Hours"]}, "Hours",
         TOP),
        ("clusteredBarChart", (860, 430, 410, 290), {"Category": ["dim_track.primary_genre"],
                                                     "Y": ["Genre share of hours"]}, "Genre share of hours", TOP),
    ]),
    ("Listening patterns", [
        *_SLICERS,
        *_cards(["Sessions", "Mean session minutes", "Median session minutes", "Longest session minutes",
                 "Sessions per active day"]),
        ("pivotTable", (0, 170, 1270, 260), {"Rows": ["fact_play.local_weekday"], "Columns": ["fact_play.local_hour"],
                                             "Values": ["Plays"]}),
        ("lineChart", (0, 440, 630, 280), {"Category": ["dim_date.month_start"],
                                           "Y": ["Skip rate", "Mean completion", "Full listen rate"]}),
        ("clusteredBarChart", (640, 440, 630, 280), {"Category": ["fact_play.platform"],
                                                     "Y": ["Platform share of plays"]}, "Platform share of plays"),
    ]),
    ("Taste", [
        *_SLICERS,
        *_cards(["Artist entropy bits", "Genre entropy bits", "Mean popularity", "Popularity coverage",
                 "Audio feature coverage"]),
        ("clusteredColumnChart", (0, 170, 630, 270), {"Category": ["dim_track.release_decade"],
                                                      "Y": ["Era share of plays"]}),
        ("clusteredBarChart", (640, 170, 630, 270), {"Category": ["dim_track.primary_genre"],
                                                     "Y": ["Genre share of hours"]}, "Genre share of hours"),
        ("lineChart", (0, 450, 630, 270), {"Category": ["dim_date.month_start"],
                                           "Y": ["Artist discovery rate", "Track discovery rate"]}),
        ("tableEx", (640, 450, 630, 270), {"Values": ["dim_album.album_name", "dim_album.release_year", "Hours",
                                                      "Plays"]}, "Hours", TOP),
    ]),
    ("Segments", [
        ("tableEx", (0, 0, 1270, 350), {"Values": ["segment_profile.segment_name", "segment_profile.size",
                                                   "segment_profile.share", "segment_profile.feature",
                                                   "segment_profile.mean", "segment_profile.z_score"]}),
        ("tableEx", (0, 360, 1270, 360), {"Values": ["user_segment.segment_name", "user_segment.segment",
                                                     "user_segment.x", "user_segment.y"]}),
    ]),
    ("Recommendations", [
        _SLICERS[1],
        ("tableEx", (0, 70, 1270, 250), {"Values": ["rec_evaluation.method", "rec_evaluation.k",
                                                    "rec_evaluation.ndcg_at_k", "rec_evaluation.recall_at_k",
                                                    "rec_evaluation.coverage", "rec_evaluation.is_default"]}),
        ("tableEx", (0, 330, 1270, 390), {"Values": ["recommendations.rank", "dim_track.track_name",
                                                     "dim_track.artist_name", "recommendations.reason",
                                                     "recommendations.method"]}),
    ]),
    ("Data quality", [
        ("clusteredColumnChart", (0, 0, 630, 300), {"Category": ["fact_play.source"], "Y": ["Plays"]}),
        ("tableEx", (0, 310, 1270, 410), {"Values": ["meta_quality.check_name", "meta_quality.table_name",
                                                     "meta_quality.status", "meta_quality.failing_rows"]}),
    ]),
)


def short_id(*parts: str) -> str:
    """A 20-hex-digit name that depends only on its parts (PBIR names pages and visuals by such ids)."""
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:20]


def page_name(display: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", display).strip("_").lower()


def field(ref: str) -> tuple[dict[str, Any], str, str]:
    """A field reference → (the PBIR field expression, its queryRef, its nativeQueryRef)."""
    if "." in ref:
        table, column = ref.split(".", 1)
        expr = {"Column": {"Expression": {"SourceRef": {"Entity": table}}, "Property": column}}
        return expr, ref, column
    table = metric(ref).table
    return {"Measure": {"Expression": {"SourceRef": {"Entity": table}}, "Property": ref}}, f"{table}.{ref}", ref


def top_filter(name: str, column: str, measure: str, n: int) -> dict[str, Any]:
    """A Top N visual filter: keep the n values of `column` with the largest `measure` (what the dashboard's top
    lists show)."""
    table, prop = column.split(".", 1)
    measure_table = metric(measure).table

    def col(source: str) -> dict[str, Any]:
        return {"Column": {"Expression": {"SourceRef": {"Source": source}}, "Property": prop}}

    subquery = {"Version": 2,
                "From": [{"Name": "d", "Entity": table, "Type": 0}, {"Name": "m", "Entity": measure_table, "Type": 0}],
                "Select": [{**col("d"), "Name": "field"}],
                "OrderBy": [{"Direction": 2, "Expression": {
                    "Measure": {"Expression": {"SourceRef": {"Source": "m"}}, "Property": measure}}}],
                "Top": n}
    return {
        "name": name, "field": field(column)[0], "type": "TopN",
        "filter": {"Version": 2,
                   "From": [{"Name": "subquery", "Expression": {"Subquery": {"Query": subquery}}, "Type": 2},
                            {"Name": "d", "Entity": table, "Type": 0}],
                   "Where": [{"Condition": {"In": {"Expressions": [col("d")],
                                                   "Table": {"SourceRef": {"Source": "subquery"}}}}}]},
    }


def visual(page: str, index: int, spec: tuple[Any, ...]) -> dict[str, Any]:
    vtype, (x, y, w, h), roles, *sort = spec
    unknown = set(roles) - set(ROLES[vtype])
    if unknown:
        raise ValueError(f"{vtype} has no role {', '.join(sorted(unknown))}")
    state = {role: {"projections": [
        {"field": expr, "queryRef": qref, "nativeQueryRef": native}
        for expr, qref, native in (field(r) for r in roles[role])]} for role in ROLES[vtype] if role in roles}
    query: dict[str, Any] = {"queryState": state}
    if sort:
        query["sortDefinition"] = {"sort": [{"field": field(sort[0])[0], "direction": "Descending"}],
                                   "isDefaultSort": False}
    doc: dict[str, Any] = {
        "$schema": VISUAL_SCHEMA,
        "name": short_id(page, str(index)),
        "position": {"x": x, "y": y, "z": index * 1000, "width": w, "height": h, "tabOrder": index * 1000},
        "visual": {"visualType": vtype, "query": query, "drillFilterOtherVisuals": True},
    }
    if len(sort) == 2:
        first = next(iter(roles.values()))[0]
        doc["filterConfig"] = {"filters": [top_filter(short_id(page, str(index), "top"), first, sort[0], sort[1])]}
    return doc


def render() -> dict[str, dict[str, Any]]:
    """Path under `<name>.Report/` → JSON document."""
    names = [page_name(display) for display, _ in PAGES]
    files: dict[str, dict[str, Any]] = {
        "definition/version.json": {"$schema": VERSION_SCHEMA, "version": "2.0.0"},
        "definition/report.json": {"$schema": REPORT_SCHEMA, "themeCollection": {}},
        "definition/pages/pages.json": {"$schema": PAGES_SCHEMA, "pageOrder": names, "activePageName": names[0]},
    }
    for name, (display, visuals) in zip(names, PAGES, strict=True):
        files[f"definition/pages/{name}/page.json"] = {
            "$schema": PAGE_SCHEMA, "name": name, "displayName": display, "displayOption": "FitToPage",
            "height": HEIGHT, "width": WIDTH}
        for i, spec in enumerate(visuals):
            doc = visual(name, i, spec)
            files[f"definition/pages/{name}/visuals/{doc['name']}/visual.json"] = doc
    return files
