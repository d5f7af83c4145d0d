"""Settings, declared once with their default and help.

Precedence, lowest first: built-in default < `<workspace>/tunelake.toml` < environment `TUNELAKE_<NAME>` < CLI flags.
Every setting is listed in the README (a test checks that), so nothing is configurable in secret.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelake.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    choices: tuple[str, ...] | None = None


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("lake_url", "", "Lake root URL: a folder, az://container/path or abfs://…; default <workspace>/lake"),
        Setting("engine", "duckdb", "Warehouse engine", choices=("duckdb", "spark")),
        Setting("spark_master", "local[*]", "Spark master URL when engine = spark"),
        Setting("duckdb_memory_limit", "", "DuckDB memory_limit (e.g. '4GB'); empty = DuckDB's default (80% of RAM)"),
        Setting("duckdb_threads", 0, "DuckDB threads; 0 = all cores", int),
        Setting("stream_threshold_ms", 30000, "Minimum ms_played for a playback to count as a stream", int),
        Setting("session_gap_minutes", 30, "A gap longer than this starts a new listening session", int),
        Setting("overlap_tolerance_s", 90, "Two playbacks of one track by one user ending this close are one", int),
        Setting("pii", "drop", "Personal fields (IP, user agent, username): drop or pseudonymize",
                choices=("drop", "pseudonymize")),
        Setting("raw_compression", "zstd", "How export files are stored in the raw zone (lossless; SHA-256 is of the "
                "bytes received)", choices=("zstd", "none")),
        Setting("default_timezone", "UTC", "Timezone for users with neither a configured nor an inferable one"),
        Setting("spotify_client_id", "", "Spotify app client id (or SPOTIPY_CLIENT_ID)"),
        Setting("spotify_redirect_uri", "http://127.0.0.1:8888/callback", "OAuth redirect URI registered for the app"),
        Setting("spotify_api_url", "https://api.spotify.com/v1/",
                "Spotify Web API base URL (the fake server in tests)"),
        Setting("spotify_accounts_url", "https://accounts.spotify.com", "Spotify accounts service URL"),
        Setting("lock_timeout_s", 300, "How long a writer waits for another one to finish before it gives up "
                "(exit 75)", int),
        Setting("retry_after_cap_s", 60, "Longest Retry-After tunelake waits before stopping a pull cleanly", int),
        Setting("dashboard_host", "127.0.0.1", "Address the dashboard binds to"),
        Setting("dashboard_port", 8050, "Port the dashboard listens on", int),
        Setting("dashboard_allowed_hosts", "", "Extra Host names the dashboard answers, comma-separated (e.g. a "
                "reverse proxy's name); loopback and the bound address are always allowed"),
    ]
}


@dataclass
class Config:
    """Resolved settings for one workspace."""

    workspace: Path
    values: dict[str, Any] = field(default_factory=dict)
    debug: bool = False

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    @property
    def lake(self) -> str:
        return self.values["lake_url"] or str(self.workspace / "lake")

    @property
    def warehouse_dir(self) -> Path:
        return self.workspace / "warehouse"

    @property
    def secrets_dir(self) -> Path:
        return self.workspace / "secrets"


def private_dir(path: Path) -> Path:
    """Create a folder only its owner can enter (mode 0700), with any missing parents: secrets live there."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _coerce(setting: Setting, raw: Any, origin: str) -> Any:
    try:
        value = setting.type(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{origin}: setting '{setting.name}' must be {setting.type.__name__}, got {raw!r}") from None
    if setting.choices and value not in setting.choices:
        raise ConfigError(
            f"{origin}: setting '{setting.name}' must be one of {', '.join(setting.choices)}, got {value!r}")
    return value


def default_workspace() -> Path:
    return Path(os.environ.get("TUNELAKE_HOME") or "./tunelake-data")


def load_config(
    workspace: Path | str | None = None, overrides: dict[str, Any] | None = None, debug: bool = False
) -> Config:
    """Resolve every setting for a workspace (file < env < overrides)."""
    ws = Path(workspace) if workspace else default_workspace()
    values = {name: s.default for name, s in SETTINGS.items()}
    toml_path = ws / "tunelake.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key not in SETTINGS:
                raise ConfigError(f"{toml_path}: unknown setting '{key}'", hint="see `tunelake config`")
            values[key] = _coerce(SETTINGS[key], raw, str(toml_path))
    for name, setting in SETTINGS.items():
        env = os.environ.get(f"TUNELAKE_{name.upper()}")
        if env is not None and env != "":
            values[name] = _coerce(setting, env, f"TUNELAKE_{name.upper()}")
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in SETTINGS:
            raise ConfigError(f"unknown setting '{name}'")
        values[name] = _coerce(SETTINGS[name], raw, f"--{name.replace('_', '-')}")
    return Config(workspace=ws, values=values, debug=debug)
