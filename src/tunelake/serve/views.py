"""The service's own HTML pages (sign-in, invite, account), as small Jinja templates rendered with autoescape.

The account page's upload sends the file itself as the request body (`fetch`, no multipart form), so the server
can stream it to disk; it then polls the job and draws the progress bar and the import summary.
"""

from __future__ import annotations

from typing import Any

BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tunelake · {{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#191414}
h1{font-size:1.5rem}section{border:1px solid #ddd;border-radius:8px;padding:1rem;margin:1rem 0}
.err{color:#b00020}.ok{color:#148a08}progress{width:100%}table{border-collapse:collapse}
td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:left}button{cursor:pointer}</style></head>
<body><header><strong>tunelake</strong>{% if name %} · signed in as <span id="whoami">{{ name }}</span>
 ({{ role }}) · <a href="/">dashboard</a> · <a href="/account">account</a>
 <form method="post" action="/logout" style="display:inline"><input type="hidden" name="csrf_token"
 value="{{ csrf_token() }}"><button id="logout">Sign out</button></form>{% endif %}</header>
{% if error %}<p class="err" id="error">{{ error }}</p>{% endif %}
{% if message %}<p class="ok" id="message">{{ message }}</p>{% endif %}
{{ body }}</body></html>"""

LOGIN = """<h1>Sign in</h1>
<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<p><label>Name <input name="name" id="name" autocomplete="username" required></label></p>
<p><label>Password <input name="password" id="password" type="password" autocomplete="current-password"
 required></label></p><p><button id="signin">Sign in</button></p></form>
{% if no_accounts %}<p>No accounts yet: an admin adds one with <code>tunelake users add NAME --role admin</code>.</p>
{% endif %}"""

INVITE = """<h1>Welcome, {{ invited }}</h1><p>Choose a password (at least {{ min_password }} characters) to create
your account.</p>
<form method="post"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<p><label>Password <input name="password" id="password" type="password" autocomplete="new-password"
 required></label></p><p><button id="accept">Create my account</button></p></form>"""

ACCOUNT = """<h1>Your account</h1>
{% if not is_admin %}
<section id="upload"><h2>Upload a Spotify export</h2>
<p>The zip Spotify sent you, or its <code>Streaming_History_*.json</code> files one at a time (up to
{{ max_mb }} MB).</p>
<input type="file" id="upload-file" accept=".zip,.json"> <button id="upload-button">Upload</button>
<p><progress id="upload-progress" max="100" value="0"></progress></p>
<p id="upload-state"></p><div id="upload-summary"></div></section>
<section id="spotify"><h2>Spotify</h2>
{% if connected %}<p id="spotify-state">Connected: new plays are collected from your account.</p>
{% if token_state in ("expiring", "expired", "needs_login") %}<p class="err" id="spotify-token">
{% if token_state == "expiring" %}Spotify's permission for tunelake ends on {{ token_expires[:10] }}: connect again
before then, or collection stops.{% elif token_state == "expired" %}Spotify's permission for tunelake ended on
{{ token_expires[:10] }}: connect again to resume collection.{% else %}Spotify no longer accepts tunelake's
permission: connect again to resume collection.{% endif %}</p>
<form method="post" action="/connect"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<button id="reconnect">Connect Spotify again</button></form>{% endif %}
<form method="post" action="/disconnect"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<button id="disconnect">Disconnect Spotify</button></form>
{% else %}<p id="spotify-state">Not connected.</p>
<form method="post" action="/connect"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<button id="connect">Connect Spotify</button></form>{% endif %}</section>
<section id="compare"><h2>Compare</h2>
<p>Comparing shows your favourite artists and tracks to the other listener, and theirs to you; it needs both of you
to agree, and you can stop at any time.</p>
<form method="post" action="/consent"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
{% if compare_ok %}<p id="compare-state">You agreed to be compared.</p>
<input type="hidden" name="compare" value="off"><button id="compare-off">Stop being compared</button>
{% else %}<p id="compare-state">Nobody can compare with you.</p>
<input type="hidden" name="compare" value="on"><button id="compare-on">Let listeners who agree compare with me
</button>{% endif %}</form></section>
<section id="mydata"><h2>My data</h2>
<p><a id="download" href="/mydata/files/{{ download_name }}">Download my data</a> (Parquet and CSV, one zip)</p>
<form method="post" action="/mydata/delete"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<p><label>Type your name to confirm <input name="confirm" id="delete-confirm"></label>
<button id="delete">Delete all my data and my account</button></p></form></section>
{% else %}
<section id="invite"><h2>Invite a listener</h2>
<form method="post" action="/account/invite"><input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<label>Name <input name="name" id="invite-name" required></label>
<select name="role" id="invite-role"><option>listener</option><option>admin</option></select>
<button id="invite-button">Make an invite link</button></form>
{% if invite_link %}<p>One-time link (valid until {{ invite_expires }}):
<code id="invite-link">{{ invite_link }}</code></p>{% endif %}</section>
<section><h2>Accounts</h2><table id="accounts"><tr><th>name</th><th>role</th><th>created</th></tr>
{% for a in accounts %}<tr><td>{{ a.name }}</td><td>{{ a.role }}</td><td>{{ a.created_at }}</td></tr>{% endfor %}
</table></section>
{% endif %}
<script>
const csrf = {{ csrf_token()|tojson }};
const btn = document.getElementById('upload-button');
if (btn) btn.onclick = async () => {
  const f = document.getElementById('upload-file').files[0]; if (!f) return;
  const state = document.getElementById('upload-state'), bar = document.getElementById('upload-progress');
  state.textContent = 'Uploading…';
  const r = await fetch('/upload', {method: 'POST', body: f, credentials: 'same-origin',
    headers: {'X-CSRFToken': csrf, 'X-Filename': f.name, 'Content-Type': 'application/octet-stream'}});
  const j = await r.json().catch(() => ({error: 'HTTP ' + r.status}));
  if (!r.ok) { state.textContent = j.error; state.className = 'err'; return; }
  const poll = async () => {
    const s = await (await fetch('/upload/' + j.id, {credentials: 'same-origin'})).json();
    bar.value = s.state === 'done' ? 100 : s.total ? Math.round(90 * s.done / s.total) : 5;
    state.textContent = s.state + (s.label ? ' · ' + s.label : '') + (s.error ? ': ' + s.error : '');
    state.dataset.state = s.state;
    if (s.summary && s.summary.read !== undefined) {
      const q = Object.entries(s.summary.quarantined).map(([k, v]) => k + ' ' + v).join(', ') || '0';
      document.getElementById('upload-summary').innerHTML = '';
      const t = document.createElement('table'); t.id = 'summary';
      for (const [k, v] of [['read', s.summary.read], ['accepted', s.summary.accepted],
          ['duplicates', s.summary.duplicates], ['merged', s.summary.merged], ['quarantined', q]]) {
        const tr = t.insertRow(); tr.insertCell().textContent = k;
        const td = tr.insertCell(); td.textContent = v; td.id = 'summary-' + k; }
      document.getElementById('upload-summary').appendChild(t);
    }
    if (s.state !== 'done' && s.state !== 'failed') setTimeout(poll, 500);
  };
  poll();
};
</script>"""


def render(template: str, title: str, **context: Any) -> str:
    """One page: `template` inside the shared frame (Flask's Jinja environment, so autoescape is on)."""
    from flask import render_template_string
    from flask_login import current_user

    body = render_template_string(template, **context)
    name = current_user.account.name if current_user.is_authenticated else ""
    role = current_user.account.role if current_user.is_authenticated else ""
    from markupsafe import Markup

    return render_template_string(BASE, title=title, body=Markup(body), name=name, role=role,
                                  error=context.get("error"), message=context.get("message"))


__all__ = ["ACCOUNT", "INVITE", "LOGIN", "render"]
