"""`tunelake generate`, `tunelake import`, `tunelake import-catalog`: data into the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tunelake.cli.common import console, emit, err_console, progress_bar, workspace
from tunelake.errors import TunelakeError


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command("import")(import_)
    app.command("import-catalog")(import_catalog_cmd)


def generate(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the synthetic world into"),
    users: int = typer.Option(100, "--users", "-n", min=1, help="Number of listeners"),
    days: int = typer.Option(180, "--days", "-d", min=1, help="Days of history per listener"),
    seed: int = typer.Option(42, "--seed", "-s", help="Random seed (same seed, same bytes)"),
    account_data: bool = typer.Option(True, "--account-data/--no-account-data",
                                      help="Also write the account-data view (StreamingHistory_music_N.json …)"),
    legacy_users: int = typer.Option(0, "--legacy-users", help="Write the last N listeners in the old endsong format"),
    world: str = typer.Option("default", "--world",
                              help="default (seven clean listener types) or hard (blended, drifting, heavy-tailed, "
                                   "noisy listeners whose histories end anywhere)"),
) -> None:
    """Write a deterministic synthetic Spotify world: exports per listener, catalogue, ground truth."""
    from tunelake.synthetic.world import WORLDS, generate_world

    if world not in WORLDS:
        raise TunelakeError(f"--world must be one of {', '.join(WORLDS)}, not {world!r}")
    with progress_bar("Generating listeners") as update:
        summary = generate_world(out, users=users, days=days, seed=seed, account_data=account_data,
                                 legacy_users=legacy_users, world=world, progress=lambda d, t: update(d, t, ""))
    console.print(
        f"[green]Wrote[/] {summary.users} listeners, {summary.track_plays:,} track plays, "
        f"{summary.episode_plays:,} episode plays in {summary.files:,} files "
        f"({summary.bytes_written / 1e6:,.1f} MB) to {out}"
    )


def print_import_summary(summary: Any) -> None:
    rows = []
    for f in summary.files:
        rows.append({
            "file": Path(f.origin.split("!")[-1]).name, "status": f.status, "read": f.read, "accepted": f.accepted,
            "duplicates": f.duplicates, "merged": f.merged,
            "quarantined": ", ".join(f"{k}={v}" for k, v in sorted(f.quarantined.items())) or "0",
            "not music": f.excluded,
        })
    if len(rows) <= 30:
        emit(rows, "table", title=f"Import for {summary.handle}")
    totals = summary.as_dict()
    q = totals["quarantined"]
    console.print(
        f"[bold]{summary.handle}[/]: read {totals['read']:,} · accepted {totals['accepted']:,} · "
        f"duplicates {totals['duplicates']:,} · merged {totals['merged']:,} · quarantined "
        f"{sum(q.values()):,}{' (' + ', '.join(f'{k} {v}' for k, v in sorted(q.items())) + ')' if q else ''} · "
        f"not music {totals['excluded_from_streams']:,} · files already imported {totals['already_imported']}"
    )
    if totals.get("to_resolve"):
        console.print(
            f"resolved {totals['resolved']:,}/{totals['to_resolve']:,} name-only rows to track ids "
            f"({totals['resolution_rate']:.1%}) · stored account rows replaced by extended history "
            f"{totals.get('replaced_account_rows', 0):,}")
    for table, counts in sorted((totals.get("by_table") or {}).items()):
        if table != "plays" and counts.get("read"):
            console.print(f"{table}: read {counts['read']:,} · accepted {counts.get('accepted', 0):,} · "
                          f"duplicates {counts.get('duplicates', 0):,} · quarantined {counts.get('quarantined', 0):,}")
    unknown = sorted({u for f in summary.files for u in f.unknown_fields})
    if unknown:
        console.print(f"[yellow]Unknown fields kept in raw:[/] {', '.join(unknown)}")


def import_(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files, folders or zips: Spotify exports, ListenBrainz, Last.fm "
                                                 "or Maloja histories"),
    user: str = typer.Option(..., "--user", "-u", help="Workspace handle of the listener these files belong to"),
    tz: str = typer.Option(None, "--tz", help="IANA timezone of the listener (default: inferred from conn_country)"),
    pii: str = typer.Option(None, "--pii", help="drop (default) or pseudonymize personal fields"),
) -> None:
    """Import Spotify privacy exports (extended streaming history, account data, library, playlists) and
    ListenBrainz, Last.fm and Maloja histories (recognised by content)."""
    from tunelake.curate.ingest import import_paths

    ws = workspace(ctx)
    if tz:
        _check_tz(tz)
    if pii and pii not in ("drop", "pseudonymize"):
        raise TunelakeError(f"--pii must be drop or pseudonymize, not {pii!r}")
    with progress_bar(f"Importing {user}") as update:
        summary = import_paths(ws, [str(p) for p in paths], user, timezone=tz, pii=pii, progress=update)
    print_import_summary(summary)
    if summary.errors:
        for e in summary.errors:
            err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2)


def _check_tz(tz: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TunelakeError(f"unknown timezone {tz!r}", hint="use an IANA name such as Europe/Berlin") from None


def import_catalog_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Catalogue CSV/Parquet file, or a folder with tracks/artists/albums"),
) -> None:
    """Import a track catalogue with audio features and genres (plain track_id layout or TidyTuesday)."""
    from tunelake.curate.catalog import import_catalog

    ws = workspace(ctx)
    with progress_bar("Importing catalogue") as update:
        s = import_catalog(ws, path, progress=update)
    if s.already_imported:
        console.print(f"{path}: already imported, nothing to do")
        return
    console.print(f"Catalogue ({s.layout} layout): {s.tracks:,} tracks, {s.artists:,} artists, {s.albums:,} albums")
    for reason, n in s.rejected.items():
        console.print(f"[yellow]rejected[/] {n} rows: {reason}")
