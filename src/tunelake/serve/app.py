"""`tunelake serve`: one Flask app holding the dashboard (Dash, mounted at /) and the service's own routes —
sign-in, invites, upload, connect Spotify, my data.

Isolation is not left to the pages: every Dash layout and callback gets the viewer from the session (never from
the request) and the metric layer applies it to every query; download and job routes look only at the signed-in
account's own user key. With no account at all the service is the single-user dashboard, and only on loopback.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import sys
import threading
import time
from typing import Any

from tunelake.analytics.insights import listener_viewer
from tunelake.dashboard import DEFAULT_HOST, DEFAULT_PORT
from tunelake.errors import ConfigError, InputError, TunelakeError
from tunelake.serve import accounts, auth, connect, mydata, views
from tunelake.serve.upload import Uploads
from tunelake.serve.warm import Warmer
from tunelake.workspace import Workspace

PUBLIC = ("/login", "/invite/")  # the only paths answered without a session
CONNECT_TTL_S = 600  # as long as Spotify's authorization code lives
FORM_POSTS = ("/login", "/logout", "/account/invite", "/upload", "/connect", "/disconnect", "/consent",
              "/mydata/delete")
log = logging.getLogger(__name__)
NOBODY = listener_viewer(-1)  # no listener has a negative key (keys are 63-bit): sees nothing


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(ws: Workspace, host: str) -> None:
    """Anything but loopback needs accounts: with none, the whole warehouse would be open to the network."""
    if not is_loopback(host) and not accounts.has_accounts(ws):
        raise ConfigError(f"binding `tunelake serve` to {host} needs accounts, and this workspace has none",
                          hint="add one with `tunelake users add NAME --role admin`, or bind 127.0.0.1")


def create_service(ws: Workspace, host: str | None = None, cache_size: int | None = None, warm: bool = False) -> Any:
    """The Flask app of `tunelake serve` (the Dash app is reachable as `app.dash`). The chart cache is larger
    than the dashboard's: each listener's views are entries of their own (~19 charts a view), so by default it
    holds four views of every account, at least 4,096 charts. `warm=True` keeps every account's unfiltered view
    in it for each new warehouse file (`serve.warm`); close the app with `close_service`."""
    from flask import Flask, abort, has_request_context, jsonify, redirect, request, session
    from flask_login import current_user, login_user, logout_user
    from werkzeug.middleware.proxy_fix import ProxyFix

    from tunelake.dashboard.app import create_app, warm_charts

    server = Flask("tunelake.serve")
    limiter = auth.install(server, ws)
    uploads = Uploads(ws)
    # Spotify connections under way: ticket → (account, PKCE verifier and state, started); kept in this process
    connecting: dict[str, tuple[str, dict[str, str], float]] = {}
    connecting_lock = threading.Lock()
    per_address, per_name = auth.login_limits(ws)

    def open_mode() -> bool:  # no accounts: the single-user dashboard (loopback only, see check_bind)
        return not accounts.has_accounts(ws)

    def viewer_of() -> Any:
        if not has_request_context():
            return None  # the warm-up thread: everyone's unfiltered charts, cached apart from listeners'
        if current_user.is_authenticated:
            return current_user.viewer
        if open_mode():
            return None
        return NOBODY  # the gate answers such requests first; Dash's one-off layout check still gets a viewer

    def header_links() -> list[Any]:
        from dash import html

        if not current_user.is_authenticated:
            return []
        return [html.Span(f"{current_user.account.name} ({current_user.account.role})", id="whoami"), " · ",
                html.A("Account", href="/account", id="account-link")]

    @server.before_request
    def gate() -> Any:
        path = request.path
        if current_user.is_authenticated or path.startswith(PUBLIC) or open_mode():
            return None
        if request.method != "GET" or "/_dash-" in path or path.startswith(("/upload", "/mydata", "/connect")):
            return _text("401 Unauthorized: sign in first", 401)
        return redirect("/login")

    @server.after_request
    def headers(resp: Any) -> Any:
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    def me() -> accounts.Account:
        if not current_user.is_authenticated:
            abort(401)
        return current_user.account

    def listener() -> accounts.Account:
        acc = me()
        if acc.is_admin:
            abort(403)
        return acc

    @server.route("/login", methods=["GET", "POST"])
    @limiter.limit(per_address, methods=["POST"])
    @limiter.limit(per_name, methods=["POST"], key_func=lambda: "name:" + str(request.form.get("name", ""))[:64])
    def login() -> Any:
        if request.method == "GET":
            return views.render(views.LOGIN, "sign in", no_accounts=open_mode(),
                                message="Your data and account were deleted." if "deleted" in request.args else None)
        acc = accounts.verify(ws, request.form.get("name", ""), request.form.get("password", ""))
        if acc is None:
            log.warning("serve: a failed sign-in")  # no address or name: logs stay free of personal data
            return views.render(views.LOGIN, "sign in", error="Wrong name or password."), 401
        session.clear()
        login_user(auth.User(acc))
        if not acc.is_admin:
            warm_charts(server.dash, current_user.viewer)  # their charts, while the page's scripts load
        return redirect("/")

    @server.route("/logout", methods=["POST"])
    def logout() -> Any:
        logout_user()
        session.clear()
        return redirect("/login")

    @server.route("/invite/<token>", methods=["GET", "POST"])
    @limiter.limit(per_address, methods=["POST"])
    def accept(token: str) -> Any:
        inv = accounts.invite_for(ws, token)
        if inv is None:
            return views.render("", "invite", error="This invite link is unknown, used or expired."), 404
        if request.method == "GET":
            return views.render(views.INVITE, "invite", invited=inv["name"], min_password=accounts.MIN_PASSWORD)
        try:
            acc = accounts.accept_invite(ws, token, request.form.get("password", ""))
        except InputError as exc:
            return views.render(views.INVITE, "invite", invited=inv["name"], min_password=accounts.MIN_PASSWORD,
                                error=str(exc)), 400
        session.clear()
        login_user(auth.User(acc))
        return redirect("/account")

    def account_page(**extra: Any) -> Any:
        from tunelake.analytics.consent import has_consented
        from tunelake.curate.listener_state import read_state, token_state

        acc = me()
        connected = not acc.is_admin and connect.connected(ws, acc.name)
        token = token_state(ws, acc.name, read_state(ws.lake, acc.name)) if connected else {}
        return views.render(views.ACCOUNT, "account", is_admin=acc.is_admin, connected=connected,
                            token_state=token.get("state"), token_expires=token.get("refresh_token_expires_at"),
                            compare_ok=not acc.is_admin and has_consented(ws.lake, acc.name),
                            max_mb=ws.settings.serve_upload_max_mb, download_name=mydata.DOWNLOAD_NAME,
                            accounts=accounts.list_accounts(ws) if acc.is_admin else [], **extra)

    @server.route("/account")
    def account() -> Any:
        return account_page(message=request.args.get("m") and _MESSAGES.get(request.args["m"]))

    @server.route("/account/invite", methods=["POST"])
    def make_invite() -> Any:
        if not me().is_admin:
            abort(403)
        try:
            token, expires = accounts.invite(ws, request.form.get("name", ""), request.form.get("role", "listener"),
                                             hours=ws.settings.serve_invite_hours)
        except InputError as exc:
            return account_page(error=str(exc)), 400
        return account_page(invite_link=f"{request.host_url}invite/{token}",
                            invite_expires=expires.isoformat(timespec="minutes"))

    @server.route("/upload", methods=["POST"])
    def upload() -> Any:
        acc = listener()
        try:
            job = uploads.receive(acc.name, request.headers.get("X-Filename"), request.stream,
                                  request.content_length)
        except InputError as exc:
            return jsonify({"error": exc.one_line()}), 400
        return jsonify(job.public()), 202

    @server.route("/upload/<job_id>")
    def upload_status(job_id: str) -> Any:
        job = uploads.get(listener().name, job_id)
        if job is None:
            abort(404)
        return jsonify(job.public())

    @server.route("/connect", methods=["POST"])
    def connect_start() -> Any:
        acc = listener()
        url, pending = connect.start(ws, acc.name, f"{request.host_url}connect/callback")
        ticket = secrets.token_urlsafe(16)  # the session (a signed, readable cookie) holds only this
        with connecting_lock:
            now = time.monotonic()
            for k in [k for k, (_, _, at) in connecting.items() if now - at > CONNECT_TTL_S]:
                del connecting[k]
            connecting[ticket] = (acc.name, pending.as_dict(), now)
        session["spotify_ticket"] = ticket
        return redirect(url)

    @server.route("/connect/callback")
    def connect_callback() -> Any:
        acc = listener()
        with connecting_lock:
            held = connecting.pop(session.pop("spotify_ticket", None) or "", None)
        fresh = held is not None and held[0] == acc.name and time.monotonic() - held[2] <= CONNECT_TTL_S
        pending = held[1] if fresh else None
        try:
            connect.finish(ws, acc.name, pending, request.args.to_dict())
        except TunelakeError as exc:
            return account_page(error=exc.one_line()), 400
        return redirect("/account?m=connected")

    @server.route("/disconnect", methods=["POST"])
    def disconnect() -> Any:
        connect.disconnect(ws, listener().name)
        return redirect("/account?m=disconnected")

    @server.route("/consent", methods=["POST"])
    def consent() -> Any:
        """The listener's own switch for being compared (both sides must agree; it takes effect at once)."""
        from tunelake.analytics.consent import set_consent

        acc = listener()
        granted = request.form.get("compare")
        if granted not in ("on", "off"):
            return account_page(error="compare must be on or off"), 400
        try:
            set_consent(ws, acc.name, "compare", granted=granted == "on")
        except InputError:
            return account_page(error="Upload your data first: there is nobody to compare yet."), 400
        return redirect(f"/account?m=compare-{granted}")

    @server.route("/mydata/files/<path:name>")
    def download(name: str) -> Any:
        acc = listener()
        if name != mydata.DOWNLOAD_NAME:  # one fixed name: nothing in the URL ever becomes a path
            abort(404)
        from flask import Response

        data = mydata.export_zip(ws, acc.user_key)
        return Response(data, mimetype="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{mydata.DOWNLOAD_NAME}"', "Cache-Control": "no-store"})

    @server.route("/mydata/delete", methods=["POST"])
    def delete() -> Any:
        acc = listener()
        if request.form.get("confirm") != acc.name:
            return account_page(error="Type your name to confirm the deletion."), 400
        logout_user()
        session.clear()
        uploads.forget(acc.name)
        mydata.delete_my_data(ws, acc.name)
        return redirect("/login?deleted=1")

    if ws.settings.serve_proxies > 0:
        n = ws.settings.serve_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n)
    if cache_size is None:
        cache_size = max(4096, 4 * 20 * (len(accounts.list_accounts(ws)) + 1))
    app = create_app(ws, cache_size=cache_size, host=host, server=server, viewer_of=viewer_of,
                     header_links=header_links, post_paths=(*FORM_POSTS, "/invite/"))
    server.dash = app
    server.uploads = uploads
    server.warmer = Warmer(ws, app).start() if warm and cache_size > 0 else None
    return server


def close_service(server: Any) -> None:
    """Stop the warm-up pass, then close the dashboard (its warehouse connection)."""
    from tunelake.dashboard.app import close_app

    if server.warmer is not None:
        server.warmer.close()
    close_app(server.dash)


_MESSAGES = {"connected": "Spotify connected: new plays are collected from your account.",
             "disconnected": "Spotify disconnected: your token was removed.",
             "compare-on": "You can now be compared with listeners who agreed too.",
             "compare-off": "Nobody can compare with you any more."}


def _text(body: str, status: int) -> Any:
    from flask import Response

    return Response(body + "\n", status=status, mimetype="text/plain")


def start_collector(ws: Workspace, say: Any) -> Any:
    """The always-on collector in a thread beside the server: it polls every listener with a token (those who
    connected Spotify here or with `tunelake auth login`), re-reading the token folder as it goes. None, with a
    line said, when another collector already runs on this workspace."""
    from tunelake.collect.collector import Collector

    collector = Collector(ws)

    def run() -> None:
        try:
            collector.run()
        except TunelakeError as exc:
            say(f"collector not started: {exc.one_line()}")

    threading.Thread(target=run, name="tunelake-serve-collector", daemon=True).start()
    return collector


def serve(ws: Workspace, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, say: Any = None,
          collect: bool = True) -> None:
    """Serve until interrupted (werkzeug's threaded server; behind a TLS reverse proxy in production), with the
    collector beside it unless `collect` is False."""
    say = say or (lambda s: print(s, file=sys.stderr))
    check_bind(ws, host)
    server = create_service(ws, host=host, warm=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    collector = start_collector(ws, say) if collect else None
    mode = "accounts on" if accounts.has_accounts(ws) else "no accounts: single-user dashboard"
    say(f"tunelake serve on http://{host}:{port}/ ({mode}; collector {'on' if collector else 'off'}; "
        "Ctrl+C to stop)")
    try:
        server.run(host=host, port=port, threaded=True, use_reloader=False)
    finally:
        server.warmer.stop.set()
        if collector is not None:
            collector.stop.set()  # polls in flight finish their commits


__all__ = ["check_bind", "close_service", "create_service", "is_loopback", "serve", "start_collector"]
