"""Settings, declared once — name, type, default, help — as the fields of `Settings`.

Precedence, lowest first: built-in default < `<workspace>/tunelake.toml` < environment `TUNELAKE_<NAME>` < CLI flags.
Every setting is listed in the README and by `tunelake config` (tests check both), and the code reads no other
`TUNELAKE_*` variable: nothing is configurable in secret. Values are typed: `settings.stream_threshold_ms` is an
int, and a value that is not one is refused where it is given, never converted later.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from tunelake.errors import ConfigError


def _s(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Settings:
    """Every setting of a workspace, resolved."""

    lake_url: str = _s("", "Lake root URL: a folder, az://container/path or abfs://…; default <workspace>/lake")
    engine: str = _s("duckdb", "Warehouse engine", ("duckdb", "spark"))
    spark_master: str = _s("local[*]", "Spark master URL when engine = spark")
    spark_driver_memory: str = _s("2g", "Spark driver memory in local mode")
    spark_shuffle_partitions: int = _s(0, "Spark shuffle partitions; 0 = sized from the input in local mode")
    spark_conf: str = _s("", "Extra Spark settings, 'key=value,key=value' (e.g. a cluster's tuning)")
    spark_output: str = _s("", "Folder or URL where Spark on a cluster writes the warehouse tables (every executor "
                               "and this machine must reach it); empty = the lake's _spark/")
    duckdb_memory_limit: str = _s("", "DuckDB memory_limit (e.g. '4GB'); empty = DuckDB's default (80% of RAM)")
    duckdb_threads: int = _s(0, "DuckDB threads for the warehouse; 0 = all cores")
    import_threads: int = _s(0, "DuckDB threads of an import process; 0 = all cores (a parallel import of many "
                                "listeners uses one per process)")
    stream_threshold_ms: int = _s(30000, "Minimum ms_played for a playback to count as a stream")
    session_gap_minutes: int = _s(30, "A gap longer than this starts a new listening session")
    overlap_tolerance_s: int = _s(90, "Two playbacks of one track by one user ending this close are one")
    eval_split: str = _s("weeks", "How the recommender evaluation cuts each listener's history: their last "
                                  "eval_test_weeks weeks, or their last eval_test_percent % of plays, are the test "
                                  "period and as much again before it the validation period", ("weeks", "percent"))
    eval_test_weeks: int = _s(4, "Weeks in each listener's test (and validation) period when eval_split = weeks")
    eval_test_percent: int = _s(20, "Share of each listener's plays in the test (and validation) period when "
                                    "eval_split = percent, 1-45")
    eval_min_train_plays: int = _s(20, "Plays a listener needs before a period to be evaluated in it")
    eval_listeners: int = _s(2000, "Listeners the recommender evaluation fits and scores on: a seeded sample when "
                                   "there are more (bounds its time and memory at any scale); 0 = every listener")
    eval_bootstrap: int = _s(1000, "Bootstrap resamples of listeners behind each confidence interval (>= 100)")
    eval_refresh_hours: int = _s(24, "How old the recommender evaluation may be and still be kept by a pipeline run "
                                     "after an incremental build (that run refits the chosen method on every play); "
                                     "a full build always evaluates again; 0: every run")
    pii: str = _s("drop", "Personal fields (IP, user agent, username): drop or pseudonymize", ("drop", "pseudonymize"))
    raw_compression: str = _s("zstd", "How export files are stored in the raw zone (lossless; SHA-256 is of the "
                                      "bytes received)", ("zstd", "none"))
    default_timezone: str = _s("UTC", "Timezone for users with neither a configured nor an inferable one")
    spotify_client_id: str = _s("", "Spotify app client id (or SPOTIPY_CLIENT_ID)")
    spotify_redirect_uri: str = _s("http://127.0.0.1:8888/callback", "OAuth redirect URI registered for the app")
    spotify_api_url: str = _s("https://api.spotify.com/v1/", "Spotify Web API base URL (the fake server in tests)")
    spotify_accounts_url: str = _s("https://accounts.spotify.com", "Spotify accounts service URL")
    lock_timeout_s: int = _s(300, "How long a writer waits for another one to finish before it gives up (exit 75)")
    retry_after_cap_s: int = _s(60, "Longest Retry-After tunelake waits before stopping a pull cleanly")
    collect_interval_s: int = _s(600, "How often `tunelake collect` polls a listener's recently played (adapts: "
                                      "sooner after a busy poll, later for idle listeners)")
    collect_snapshot_interval_s: int = _s(86400, "How often the collector snapshots top items, saved tracks, "
                                                 "playlists and profile, and enriches new tracks")
    collect_concurrency: int = _s(4, "Listeners the collector polls at the same time")
    pipeline_min_interval_s: int = _s(900, "After new plays, the collector runs the pipeline at most this often")
    dashboard_host: str = _s("127.0.0.1", "Address the dashboard binds to")
    dashboard_port: int = _s(8050, "Port the dashboard listens on")
    dashboard_allowed_hosts: str = _s("", "Extra Host names the dashboard answers, comma-separated (e.g. a reverse "
                                          "proxy's name); loopback and the bound address are always allowed")
    serve_https: str = _s("off", "`tunelake serve` is reached over HTTPS (a TLS reverse proxy): Secure cookies, "
                                 "strict Referer checks", ("off", "on"))
    serve_proxies: int = _s(0, "Reverse proxies in front of `tunelake serve` whose X-Forwarded-For/-Proto/-Host "
                               "are trusted (0 = none)")
    serve_upload_max_mb: int = _s(512, "Largest export upload `tunelake serve` accepts, in MB (streamed to disk)")
    serve_login_rate: str = _s("5 per minute", "Login attempts allowed per client address (Flask-Limiter syntax)")
    serve_login_rate_per_name: str = _s("20 per hour", "Login attempts allowed per account name")
    serve_invite_hours: int = _s(72, "How long an invite link made by `tunelake users invite` stays valid")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed, each checked as if given on the command line."""
        return replace(self, **{k: _coerce(SETTINGS[k], v, f"--{k.replace('_', '-')}") for k, v in changes.items()})


@dataclass(frozen=True)
class Setting:
    """One setting as `tunelake config` and the README show it."""

    name: str
    default: Any
    help: str
    type: type
    choices: tuple[str, ...] | None = None

    @property
    def env(self) -> str:
        return f"TUNELAKE_{self.name.upper()}"


_TYPES = get_type_hints(Settings)
SETTINGS: dict[str, Setting] = {
    f.name: Setting(f.name, f.default, f.metadata["help"], _TYPES[f.name], f.metadata["choices"])
    for f in fields(Settings) if f.default is not MISSING
}

# Environment variables read besides TUNELAKE_<SETTING>: where the workspace is, tracebacks, and the names other
# tools use for the same things (Spotipy's client id, Azure's storage credentials).
OTHER_ENVIRONMENT: dict[str, str] = {
    "TUNELAKE_HOME": "Workspace folder (the --workspace option); default ./tunelake-data",
    "TUNELAKE_DEBUG": "1 shows tracebacks on errors (the --debug option)",
    "SPOTIPY_CLIENT_ID": "Spotify app client id when spotify_client_id is empty (Spotipy's own name for it)",
    "LISTENBRAINZ_TOKEN": "ListenBrainz user token for `tunelake export listenbrainz --submit`",
    "AZURE_STORAGE_CONNECTION_STRING": "Azure Blob / ADLS credentials for az:// and abfs:// lakes",
    "AZURE_STORAGE_ACCOUNT_NAME": "Azure storage account (with AZURE_STORAGE_ACCOUNT_KEY or _SAS_TOKEN, or "
                                  "DefaultAzureCredential)",
    "AZURE_STORAGE_ACCOUNT_KEY": "Azure storage account key",
    "AZURE_STORAGE_SAS_TOKEN": "Azure storage SAS token",
    "JAVA_HOME": "Java for the Spark engine (else `java` on PATH)",
    "SPARK_LOCAL_IP": "Spark's bind address; set to 127.0.0.1 when unset",
    "PYSPARK_PYTHON": "Python of Spark's workers; this interpreter when unset",
    "TMPDIR": "where Spark keeps its (empty) SQL warehouse folder; /tmp when unset",
}


def _coerce(setting: Setting, raw: Any, origin: str, text: bool = True) -> Any:
    """A value of the setting's type. `text`: the value comes as text (environment, command line) and is parsed;
    otherwise (TOML) it must already have the type: `stream_threshold_ms = "30000"` is refused, not converted."""
    value = raw
    if setting.type is int:
        if isinstance(raw, str) and text:
            try:
                value = int(raw.strip())
            except ValueError:
                value = None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{origin}: setting '{setting.name}' must be a whole number, got {raw!r}")
    elif not isinstance(raw, str):
        raise ConfigError(f"{origin}: setting '{setting.name}' must be text, got {raw!r}")
    if setting.choices and value not in setting.choices:
        raise ConfigError(
            f"{origin}: setting '{setting.name}' must be one of {', '.join(setting.choices)}, got {value!r}")
    return value


def default_root() -> Path:
    return Path(os.environ.get("TUNELAKE_HOME") or "./tunelake-data")


def load_settings(root: Path, overrides: dict[str, Any] | None = None) -> Settings:
    """Resolve every setting for a workspace folder (file < environment < overrides; None overrides are unset)."""
    values: dict[str, Any] = {}
    toml_path = root / "tunelake.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key not in SETTINGS:
                raise ConfigError(f"{toml_path}: unknown setting '{key}'", hint="see `tunelake config`")
            values[key] = _coerce(SETTINGS[key], raw, str(toml_path), text=False)
    for name, setting in SETTINGS.items():
        env = os.environ.get(setting.env)
        if env is not None and env != "":
            values[name] = _coerce(setting, env, setting.env)
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in SETTINGS:
            raise ConfigError(f"unknown setting '{name}'")
        values[name] = _coerce(SETTINGS[name], raw, f"--{name.replace('_', '-')}")
    return Settings(**values)


def private_dir(path: Path) -> Path:
    """Create a folder only its owner can enter (mode 0700), with any missing parents: secrets live there."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path
