"""`tunelake serve` and `tunelake users`: the multi-listener web service and its accounts."""

from __future__ import annotations

import typer

users_app = typer.Typer(help="Accounts of `tunelake serve`: admins and listeners.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(users_app, name="users")


def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, "--host", help="Interface to bind (default 127.0.0.1, setting dashboard_host); "
                             "any other address needs accounts (`tunelake users add`)"),
    port: int = typer.Option(None, "--port", "-p", min=1, max=65535,
                             help="Port to serve on (default 8050, setting dashboard_port)"),
    collect: bool = typer.Option(True, "--collect/--no-collect", help="Run the collector beside the server "
                                 "(polls every listener who connected Spotify; see `tunelake collect`)"),
) -> None:
    """Serve the dashboard with accounts: each listener sees only their own data, uploads exports, connects
    Spotify, downloads or deletes their data; admins see everyone. The collector runs beside it."""
    from tunelake.cli.common import err_console, workspace
    from tunelake.serve.app import serve as run

    ws = workspace(ctx)
    run(ws, host=host or ws.settings.dashboard_host, port=port or ws.settings.dashboard_port,
        say=lambda s: err_console.print(s, highlight=False), collect=collect)


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Account name (also the listener's workspace handle)"),
    role: str = typer.Option("listener", "--role", "-r", help="admin or listener"),
    password: str = typer.Option(..., "--password", prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="The password (asked for when not given; at least 10 characters)"),
) -> None:
    """Add an account with a password (stored as an Argon2 hash in secrets/accounts.json, mode 0600)."""
    from tunelake.cli.common import console, workspace
    from tunelake.serve.accounts import add_account

    acc = add_account(workspace(ctx), name, role, password)
    console.print(f"[green]Added[/] {acc.role} {acc.name}")


@users_app.command("invite")
def users_invite(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name of the account the invite creates"),
    role: str = typer.Option("listener", "--role", "-r", help="admin or listener"),
    base_url: str = typer.Option("http://127.0.0.1:8050", "--url", help="Address people reach the service at"),
    hours: int = typer.Option(None, "--hours", min=1, help="Validity (default: setting serve_invite_hours)"),
) -> None:
    """Make a one-time invite link: whoever opens it first, before it expires, sets the account's password."""
    from tunelake.cli.common import console, workspace
    from tunelake.serve.accounts import invite

    ws = workspace(ctx)
    token, expires = invite(ws, name, role, hours=hours or ws.settings.serve_invite_hours)
    console.print(f"{base_url.rstrip('/')}/invite/{token}", highlight=False, soft_wrap=True)
    console.print(f"valid once, until {expires.isoformat(timespec='minutes')}", style="dim")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List accounts and open invites (never a hash or a token)."""
    from tunelake.cli.common import emit, workspace
    from tunelake.serve.accounts import list_accounts, pending_invites

    ws = workspace(ctx)
    rows = [{"name": a.name, "role": a.role, "status": "active" if a.password_hash else "no password",
             "since": a.created_at} for a in list_accounts(ws)]
    rows += [{"name": i["name"], "role": i["role"], "status": "invited", "since": f"until {i['expires_at']}"}
             for i in pending_invites(ws)]
    emit(rows, "table", title="Accounts")


@users_app.command("remove")
def users_remove(ctx: typer.Context, name: str = typer.Argument(..., help="Account to remove")) -> None:
    """Remove an account and its invites (its listening data stays; the listener deletes it from My data)."""
    from tunelake.cli.common import console, workspace
    from tunelake.errors import InputError
    from tunelake.serve.accounts import remove_account

    if not remove_account(workspace(ctx), name):
        raise InputError(f"no account {name!r}", field="NAME", hint="see `tunelake users list`")
    console.print(f"[green]Removed[/] {name}")
