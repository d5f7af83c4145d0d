"""Spotify Web API commands: `auth login`, `pull`, `playlist push`, `fake-spotify`. Registered by `tunelake.cli`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from tunelake.cli.common import workspace


def _say(text: str) -> None:
    typer.echo(text)


auth_app = typer.Typer(help="Spotify account authorisation (OAuth authorization code with PKCE).", no_args_is_help=True)
playlist_app = typer.Typer(help="Write playlists back to Spotify.", no_args_is_help=True)


@auth_app.command("login")
def auth_login(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Workspace user handle the token belongs to"),
    paste: bool = typer.Option(False, "--paste", help="Paste the redirect URL instead of running a local listener"),
    auto: bool = typer.Option(False, "--auto", help="Auto-approve against the fake server (no browser)"),
    listener: str = typer.Option(None, "--listener", help="With --auto: the fake world's listener (default: --user)"),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL, do not open a browser"),
) -> None:
    """Log a user in; the token is cached in <workspace>/secrets/tokens/<user>.json (mode 0600), never printed."""
    from tunelake.curate.pull import login

    method = "auto" if auto else "paste" if paste else "listen"
    info = login(workspace(ctx), user, method=method, listener=listener, open_browser=not no_browser, say=_say)
    typer.echo(f"Logged in {info['user']} as Spotify user {info['spotify_id']} ({info.get('display_name') or ''})")


def pull_cmd(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Workspace user handle (logged in with `auth login`)"),
    what: str = typer.Option(
        "recent,top,saved,playlists,profile,enrich",
        "--what",
        help="Comma-separated: recent, top, saved, playlists, profile, enrich",
    ),
) -> None:
    """Pull a user's Spotify data into the lake (recently played incrementally, top items, library, playlists)."""
    from tunelake.curate.pull import pull

    items = [w.strip() for w in what.split(",") if w.strip()]
    r = pull(workspace(ctx), user, items)
    typer.echo(
        f"{r.user}: {r.pages} pages, plays read {r.plays_read:,} · new {r.plays_new:,} · duplicates "
        f"{r.duplicates:,} · merged with export plays {r.merged:,} · top items {r.top_items:,} · saved tracks "
        f"{r.saved_tracks:,} · playlists {r.playlists:,} ({r.playlist_items:,} items)"
        + (f" · enriched {', '.join(f'{k} {v}' for k, v in r.enriched.items())}" if r.enriched else "")
        + (f" · unavailable to this app: {', '.join(r.unavailable)}" if r.unavailable else "")
    )


@playlist_app.command("push")
def playlist_push(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Workspace user handle"),
    name: str = typer.Option("tunelake recommendations", "--name", help="Playlist name (created or replaced)"),
    tracks: str = typer.Option(..., "--tracks", help="File with one track id/URI per line, or - for stdin"),
    public: bool = typer.Option(False, "--public/--private", help="Visibility of a newly created playlist"),
) -> None:
    """Create or update a named playlist with the given tracks."""
    from tunelake.errors import InputError
    from tunelake.sources.spotify.playlist import push_playlist

    if tracks == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            lines = Path(tracks).read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=tracks) from None
    ids = [ln.split(",")[0].strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    r = push_playlist(workspace(ctx), user, name, ids, public=public)
    typer.echo(
        f"{'Created' if r['created'] else 'Updated'} playlist {r['name']!r} ({r['playlist_id']}) "
        f"with {r['tracks']} tracks for {r['user']}"
    )


def fake_spotify(
    world: Path = typer.Option(..., "--world", help="Synthetic world folder (from `tunelake generate`)"),
    port: int = typer.Option(8765, "--port", "-p", help="Port on 127.0.0.1"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (keep it loopback)"),
    dev_mode: bool = typer.Option(
        False,
        "--dev-mode",
        help="Behave like a development-mode app (403 on batch "
        "metadata and audio features, no genres/popularity, at most 5 users)",
    ),
    faults: str = typer.Option(
        "", "--faults", help="Faults, e.g. '429x3:2,503x2,slowx5:1.5,ttl:30' (also at run time: POST /_fault)"
    ),
    recent_limit: int = typer.Option(
        50,
        "--recent-limit",
        min=0,
        help="Expose only the last N plays, as the real API does with 50; 0 lets `after` page through the whole "
        "history (the old default, for tests)",
    ),
    live: float = typer.Option(
        None,
        "--live",
        min=0,
        metavar="SPEED",
        help="Live mode: listeners keep listening in simulated time, SPEED× faster than real time from the world's "
        "end (0: the clock moves only through POST /_live/clock); GET /_live/truth?user=NAME lists every play so far",
    ),
) -> None:
    """Run the local fake Spotify Web API and accounts service backed by a synthetic world."""
    from tunelake.errors import InputError
    from tunelake.synthetic.server import FakeSpotify, parse_fault_spec

    try:
        srv = FakeSpotify(world, dev_mode=dev_mode, host=host, port=port, recent_limit=recent_limit, live=live)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc), hint="make a world with `tunelake generate --out DIR`") from None
    try:
        srv.apply_faults(parse_fault_spec(faults))
    except ValueError as exc:
        raise InputError(str(exc), field="--faults") from None
    mode = f", live at {live:g}x from {srv.world.end:%Y-%m-%d %H:%M} UTC" if live is not None else ""
    typer.echo(
        f"Fake Spotify on http://{host}:{port} ({len(srv.world.handles)} listeners"
        f"{', development mode' if dev_mode else ''}{mode}; recently-played shows "
        f"{f'the last {recent_limit} plays' if recent_limit else 'the whole history'}). Point tunelake at it with\n"
        f"  TUNELAKE_SPOTIFY_API_URL=http://{host}:{port}/v1/ TUNELAKE_SPOTIFY_ACCOUNTS_URL=http://{host}:{port}"
        f" TUNELAKE_SPOTIFY_CLIENT_ID=demo\nCtrl-C stops it."
    )
    with contextlib.suppress(KeyboardInterrupt):
        srv.serve_forever()


def register(app: typer.Typer) -> None:
    app.add_typer(auth_app, name="auth")
    app.add_typer(playlist_app, name="playlist")
    app.command("pull")(pull_cmd)
    app.command("fake-spotify")(fake_spotify)
