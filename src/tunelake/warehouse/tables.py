"""Every warehouse table, declared once: columns, types, keys, grain and Synapse distribution.

DuckDB DDL, Spark schemas, Synapse T-SQL, docs/warehouse.md and the quality gates are all generated from these
specs, so the dialects and the documentation cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Logical types and their spelling per dialect.
TYPES: dict[str, dict[str, str]] = {
    "VARCHAR": {"duckdb": "VARCHAR", "spark": "STRING", "tsql": "NVARCHAR({length})", "arrow": "string"},
    "BIGINT": {"duckdb": "BIGINT", "spark": "BIGINT", "tsql": "BIGINT", "arrow": "int64"},
    "INTEGER": {"duckdb": "INTEGER", "spark": "INT", "tsql": "INT", "arrow": "int32"},
    "SMALLINT": {"duckdb": "SMALLINT", "spark": "SMALLINT", "tsql": "SMALLINT", "arrow": "int16"},
    "DOUBLE": {"duckdb": "DOUBLE", "spark": "DOUBLE", "tsql": "FLOAT", "arrow": "float64"},
    "BOOLEAN": {"duckdb": "BOOLEAN", "spark": "BOOLEAN", "tsql": "BIT", "arrow": "bool"},
    "TIMESTAMP": {"duckdb": "TIMESTAMP", "spark": "TIMESTAMP", "tsql": "DATETIME2(3)", "arrow": "timestamp[ms]"},
    "DATE": {"duckdb": "DATE", "spark": "DATE", "tsql": "DATE", "arrow": "date32"},
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True
    length: int = 200  # NVARCHAR length in T-SQL; ignored elsewhere
    references: str | None = None  # "table.column" checked by the quality gates (never a DDL foreign key)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"unknown logical type {self.type} for column {self.name}")

    def sql_type(self, dialect: str) -> str:
        return TYPES[self.type][dialect].format(length=self.length)


@dataclass(frozen=True)
class Table:
    name: str
    kind: str  # dim | fact | bridge | agg | meta | analytics
    grain: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    distribution: str = "REPLICATE"  # REPLICATE | HASH(user_key) | ROUND_ROBIN
    layer: str = "warehouse"  # warehouse (built by models) | analytics | meta
    partition_by: tuple[str, ...] = field(default_factory=tuple)
    # The order the DuckDB serving file stores rows in: DuckDB keeps min/max per row group, so a filter on these
    # columns (a listener's page: user_key) reads only that listener's row groups instead of the whole table.
    cluster_by: tuple[str, ...] = field(default_factory=tuple)

    def ordered(self, select_sql: str) -> str:
        """`select_sql` with its rows in `cluster_by` order (unchanged when the table declares none)."""
        if not self.cluster_by:
            return select_sql
        return f"SELECT * FROM ({select_sql}) ORDER BY {', '.join(self.cluster_by)}"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def C(
    name: str, type_: str, description: str, nullable: bool = True, length: int = 200, references: str | None = None
) -> Column:
    return Column(name, type_, description, nullable, length, references)


_USER = C("user_key", "BIGINT", "Pseudonymous user key (hash of the workspace handle)", False,
          references="dim_user.user_key")
_DATE = C("date_key", "INTEGER", "Local calendar date as yyyymmdd", False, references="dim_date.date_key")
_TRACK = C("track_id", "VARCHAR", "Spotify track id, or a stable surrogate 'x…' for unresolved tracks", False, 40,
           references="dim_track.track_id")

TABLES: dict[str, Table] = {}


def _register(*tables: Table) -> None:
    for t in tables:
        TABLES[t.name] = t


# --- dimensions ------------------------------------------------------------------------------------------------
_register(
    Table(
        "dim_user", "dim", "one row per listener",
        "Listeners known to the workspace. The key is pseudonymous; the handle is what the operator chose on import.",
        (
            C("user_key", "BIGINT", "Pseudonymous user key", False),
            C("handle", "VARCHAR", "Workspace handle given with --user", False, 100),
            C("country", "VARCHAR", "Dominant conn_country of the user's plays (ISO 3166-1 alpha-2)", length=2),
            C("timezone", "VARCHAR", "IANA timezone used for local-time columns", False, 64),
            C("timezone_source", "VARCHAR", "configured | inferred | default", False, 16),
            C("first_played_at", "TIMESTAMP", "UTC end time of the user's first playback"),
            C("last_played_at", "TIMESTAMP", "UTC end time of the user's last playback"),
            C("plays", "BIGINT", "Music playbacks in fact_play", False),
        ),
        ("user_key",),
    ),
    Table(
        "dim_track", "dim", "one row per track",
        "Tracks seen in plays, library, playlists or the catalogue. Catalogue and API fields are null when unknown.",
        (
            C("track_id", "VARCHAR", "Spotify track id (22 chars) or surrogate 'x…' id", False, 40),
            C("track_name", "VARCHAR", "Track title", length=400),
            C("artist_id", "VARCHAR", "Primary artist", length=40, references="dim_artist.artist_id"),
            C("artist_name", "VARCHAR", "Primary artist name", length=400),
            C("album_id", "VARCHAR", "Album", length=40, references="dim_album.album_id"),
            C("album_name", "VARCHAR", "Album title", length=400),
            C("duration_ms", "INTEGER", "Track length in ms (catalogue/API)"),
            C("explicit", "BOOLEAN", "Explicit lyrics flag"),
            C("popularity", "SMALLINT", "Spotify popularity 0–100 (catalogue/API)"),
            C("isrc", "VARCHAR", "International Standard Recording Code", length=12),
            C("release_date", "DATE", "Album release date (first day of the period for year/month precision)"),
            C("release_year", "SMALLINT", "Album release year"),
            C("primary_genre", "VARCHAR", "First genre of the primary artist", length=100),
            C("danceability", "DOUBLE", "Audio feature 0–1"),
            C("energy", "DOUBLE", "Audio feature 0–1"),
            C("valence", "DOUBLE", "Audio feature 0–1"),
            C("acousticness", "DOUBLE", "Audio feature 0–1"),
            C("instrumentalness", "DOUBLE", "Audio feature 0–1"),
            C("speechiness", "DOUBLE", "Audio feature 0–1"),
            C("liveness", "DOUBLE", "Audio feature 0–1"),
            C("loudness", "DOUBLE", "Audio feature, dB"),
            C("tempo", "DOUBLE", "Audio feature, BPM"),
            C("has_audio_features", "BOOLEAN", "True when the audio features above are known", False),
            C("in_catalog", "BOOLEAN", "True when an imported catalogue describes the track", False),
        ),
        ("track_id",),
    ),
    Table(
        "dim_album", "dim", "one row per album",
        "Albums from the catalogue, or surrogate albums named in plays.",
        (
            C("album_id", "VARCHAR", "Spotify album id or surrogate 'x…' id", False, 40),
            C("album_name", "VARCHAR", "Album title", length=400),
            C("artist_id", "VARCHAR", "Primary artist", length=40, references="dim_artist.artist_id"),
            C("release_date", "DATE", "Release date (first day of the period for year/month precision)"),
            C("release_date_precision", "VARCHAR", "year | month | day", length=8),
            C("release_year", "SMALLINT", "Release year"),
            C("album_type", "VARCHAR", "album | single | compilation", length=16),
        ),
        ("album_id",),
    ),
    Table(
        "dim_artist", "dim", "one row per artist",
        "Artists from the catalogue, or surrogate artists named in plays (extended history carries no artist id).",
        (
            C("artist_id", "VARCHAR", "Spotify artist id or surrogate 'x…' id", False, 40),
            C("artist_name", "VARCHAR", "Artist name", length=400),
            C("popularity", "SMALLINT", "Spotify popularity 0–100"),
            C("followers", "BIGINT", "Follower count"),
            C("primary_genre", "VARCHAR", "First listed genre", length=100),
            C("is_surrogate", "BOOLEAN", "True when the id was made from the name", False),
        ),
        ("artist_id",),
    ),
    Table(
        "bridge_track_artist", "bridge", "one row per track and credited artist",
        "Which artists a track credits, in order.",
        (
            C("track_id", "VARCHAR", "Track", False, 40, references="dim_track.track_id"),
            C("artist_id", "VARCHAR", "Artist", False, 40, references="dim_artist.artist_id"),
            C("artist_position", "SMALLINT", "0 for the primary artist", False),
        ),
        ("track_id", "artist_id"),
    ),
    Table(
        "bridge_artist_genre", "bridge", "one row per artist and genre",
        "Genres of each artist (from the catalogue or API).",
        (
            C("artist_id", "VARCHAR", "Artist", False, 40, references="dim_artist.artist_id"),
            C("genre", "VARCHAR", "Genre name", False, 100),
            C("genre_rank", "SMALLINT", "0 for the artist's first genre", False),
        ),
        ("artist_id", "genre"),
    ),
    Table(
        "dim_date", "dim", "one row per calendar day",
        "Calendar covering every local play date.",
        (
            C("date_key", "INTEGER", "yyyymmdd", False),
            C("date", "DATE", "The day", False),
            C("year", "SMALLINT", "Year", False),
            C("quarter", "SMALLINT", "Quarter 1–4", False),
            C("month", "SMALLINT", "Month 1–12", False),
            C("month_start", "DATE", "First day of the month", False),
            C("day", "SMALLINT", "Day of month", False),
            C("iso_weekday", "SMALLINT", "1 = Monday … 7 = Sunday", False),
            C("day_name", "VARCHAR", "Monday … Sunday", False, 10),
            C("is_weekend", "BOOLEAN", "Saturday or Sunday", False),
            C("iso_week", "SMALLINT", "ISO week number", False),
        ),
        ("date_key",),
    ),
)

# --- facts -----------------------------------------------------------------------------------------------------
_PLAY_COMMON = (
    C("started_at", "TIMESTAMP", "UTC start = ended_at − ms_played (a scrobble's own time, its start)", False),
    C("ended_at", "TIMESTAMP", "UTC end of playback (the export's ts)", False),
    C("ended_at_local", "TIMESTAMP", "End of playback in the user's timezone", False),
    _DATE,
    C("local_hour", "SMALLINT", "Hour of day 0–23 of the local start", False),
    C("local_weekday", "SMALLINT", "ISO weekday 1–7 of the local start", False),
    C("ms_played", "BIGINT", "Milliseconds played; null for scrobbles (Last.fm, ListenBrainz, Maloja do not say)"),
    C("reason_start", "VARCHAR", "Why playback started (trackdone, clickrow, …)", length=40),
    C("reason_end", "VARCHAR", "Why playback ended (trackdone, fwdbtn, …)", length=40),
    C("shuffle", "BOOLEAN", "Shuffle on"),
    C("offline", "BOOLEAN", "Played offline"),
    C("incognito", "BOOLEAN", "Private session"),
    C("platform", "VARCHAR", "Normalised platform: android, ios, windows, macos, linux, web, cast, other", length=40),
    C("conn_country", "VARCHAR", "Country of the connection", length=2),
    C("source", "VARCHAR", "extended | account | api | listenbrainz | lastfm | maloja", False, 16),
)

_register(
    Table(
        "fact_play", "fact", "one row per music playback (every playback, not only streams)",
        "Music playbacks. Flags decide what each metric counts: is_stream for Spotify's 30-second rule, is_skip …",
        (
            C("play_id", "VARCHAR", "Deterministic playback id (hash of user, end time, item, ms_played)", False, 32),
            _USER,
            _TRACK,
            C("artist_id", "VARCHAR", "Primary artist", length=40, references="dim_artist.artist_id"),
            C("album_id", "VARCHAR", "Album", length=40, references="dim_album.album_id"),
            *_PLAY_COMMON,
            C("is_stream", "BOOLEAN", "ms_played ≥ stream_threshold_ms (30 000 by default, Spotify's rule); every "
              "scrobble (its scrobbler applied the scrobble rule)", False),
            C("is_skip", "BOOLEAN", "Spotify's skipped flag, or ended by fwdbtn/backbtn before the track's end", False),
            C("completion", "DOUBLE", "ms_played / duration_ms, capped at 1; null when the duration is unknown"),
            C("session_id", "BIGINT", "Per-user session number; a gap > session_gap_minutes starts a new one", False),
            C("media_type", "VARCHAR", "audio | video", False, 8),
        ),
        ("play_id",),
        distribution="HASH(user_key)",
    ),
    Table(
        "fact_episode_play", "fact", "one row per podcast-episode or audiobook playback",
        "Spoken-word playbacks, kept apart so they never count as music.",
        (
            C("play_id", "VARCHAR", "Deterministic playback id", False, 32),
            _USER,
            C("content_type", "VARCHAR", "episode | audiobook", False, 16),
            C("item_id", "VARCHAR", "Episode or audiobook-chapter id (surrogate when the export has none)", False, 40),
            C("item_name", "VARCHAR", "Episode or chapter title", length=400),
            C("show_name", "VARCHAR", "Show or audiobook title", length=400),
            *_PLAY_COMMON,
            C("media_type", "VARCHAR", "audio | video", False, 8),
        ),
        ("play_id",),
        distribution="HASH(user_key)",
    ),
    Table(
        "fact_saved_track", "fact", "one row per user and saved (liked) track",
        "The user's library of saved tracks, from YourLibrary.json or the API.",
        (
            _USER,
            _TRACK,
            C("saved_at", "TIMESTAMP", "When saved (API added_at); null from exports"),
            C("source", "VARCHAR", "account | api", False, 16),
        ),
        ("user_key", "track_id"),
        distribution="HASH(user_key)",
    ),
    Table(
        "fact_playlist_item", "fact", "one row per playlist entry",
        "Playlist contents from Playlist*.json or the API.",
        (
            _USER,
            C("playlist_id", "VARCHAR", "Spotify playlist id, or surrogate from user and name", False, 40),
            C("playlist_name", "VARCHAR", "Playlist name", length=400),
            C("position", "INTEGER", "0-based position in the playlist", False),
            C("item_type", "VARCHAR", "track | episode | audiobook | local", False, 16),
            C("track_id", "VARCHAR", "Track (null for non-track items)", length=40, references="dim_track.track_id"),
            C("added_at", "TIMESTAMP", "When added (addedDate / added_at), if known"),
            C("source", "VARCHAR", "account | api", False, 16),
        ),
        ("user_key", "playlist_id", "position"),
        distribution="HASH(user_key)",
    ),
    Table(
        "fact_top_item", "fact", "one row per user, snapshot day, time range, item type and rank",
        "Dated snapshots of the API's top artists and tracks.",
        (
            _USER,
            C("snapshot_date", "DATE", "Day the snapshot was pulled", False),
            C("time_range", "VARCHAR", "short_term | medium_term | long_term", False, 16),
            C("item_type", "VARCHAR", "artist | track", False, 8),
            C("rank", "SMALLINT", "1-based rank", False),
            C("item_id", "VARCHAR", "Spotify artist or track id", False, 40),
            C("item_name", "VARCHAR", "Artist or track name", length=400),
        ),
        ("user_key", "snapshot_date", "time_range", "item_type", "rank"),
        distribution="HASH(user_key)",
    ),
)

# --- aggregates ------------------------------------------------------------------------------------------------
_register(
    Table(
        "agg_user_day", "agg", "one row per user and local day with any music playback",
        "Daily totals per user: the overview and monthly-listening charts read this instead of fact_play.",
        (
            _USER,
            _DATE,
            C("date", "DATE", "Local day", False),
            C("plays", "BIGINT", "Playbacks", False),
            C("streams", "BIGINT", "Playbacks ≥ 30 s", False),
            C("skips", "BIGINT", "Skipped playbacks", False),
            C("ms_played", "BIGINT", "Milliseconds played (null when the group holds only scrobbles)"),
            C("distinct_tracks", "BIGINT", "Distinct tracks played", False),
            C("distinct_artists", "BIGINT", "Distinct primary artists played", False),
        ),
        ("user_key", "date_key"),
        distribution="HASH(user_key)", cluster_by=("user_key",),
    ),
    Table(
        "agg_user_day_hour", "agg", "one row per user, local day and local hour with any music playback",
        "Hour × weekday heatmaps for any date range without scanning fact_play.",
        (
            _USER,
            _DATE,
            C("local_hour", "SMALLINT", "Hour 0–23", False),
            C("local_weekday", "SMALLINT", "ISO weekday 1–7", False),
            C("plays", "BIGINT", "Playbacks", False),
            C("ms_played", "BIGINT", "Milliseconds played (null when the group holds only scrobbles)"),
        ),
        ("user_key", "date_key", "local_hour"),
        distribution="HASH(user_key)", cluster_by=("user_key",),
    ),
    Table(
        "agg_user_track_month", "agg", "one row per user, local month and track",
        "Monthly per-track totals: top tracks, artists and albums for any month range.",
        (
            _USER,
            C("month_start", "DATE", "First local day of the month", False),
            _TRACK,
            C("artist_id", "VARCHAR", "Primary artist", length=40, references="dim_artist.artist_id"),
            C("album_id", "VARCHAR", "Album", length=40, references="dim_album.album_id"),
            C("plays", "BIGINT", "Playbacks", False),
            C("streams", "BIGINT", "Playbacks ≥ 30 s", False),
            C("skips", "BIGINT", "Skipped playbacks", False),
            C("ms_played", "BIGINT", "Milliseconds played (null when the group holds only scrobbles)"),
            C("first_month", "BOOLEAN", "True in the month the user first played the track (discovery)", False),
        ),
        ("user_key", "month_start", "track_id"),
        distribution="HASH(user_key)", cluster_by=("user_key",),
    ),
    Table(
        "agg_user_artist_month", "agg", "one row per user, local month and primary artist",
        "Monthly per-artist totals (plays of tracks with no known artist are left out): top artists for any "
        "period without grouping the much larger per-track aggregate.",
        (
            _USER,
            C("month_start", "DATE", "First local day of the month", False),
            C("artist_id", "VARCHAR", "Primary artist", False, 40, references="dim_artist.artist_id"),
            C("plays", "BIGINT", "Playbacks", False),
            C("streams", "BIGINT", "Playbacks ≥ 30 s", False),
            C("skips", "BIGINT", "Skipped playbacks", False),
            C("ms_played", "BIGINT", "Milliseconds played (null when the group holds only scrobbles)"),
            C("distinct_tracks", "BIGINT", "Distinct tracks of the artist played", False),
            C("first_month", "BOOLEAN", "True in the month the user first played the artist (discovery)", False),
        ),
        ("user_key", "month_start", "artist_id"),
        distribution="HASH(user_key)", cluster_by=("user_key",),
    ),
)

# --- run log and quality ---------------------------------------------------------------------------------------
_register(
    Table(
        "meta_run", "meta", "one row per pipeline step execution",
        "Run log written by every pipeline step.",
        (
            C("run_id", "VARCHAR", "Run id (UTC timestamp + random suffix)", False, 40),
            C("step", "VARCHAR", "Step name", False, 40),
            C("started_at", "TIMESTAMP", "UTC start", False),
            C("ended_at", "TIMESTAMP", "UTC end"),
            C("rows_in", "BIGINT", "Rows read"),
            C("rows_out", "BIGINT", "Rows written"),
            C("status", "VARCHAR", "ok | skipped | failed", False, 16),
            C("error", "VARCHAR", "Error message when failed", length=4000),
            C("details", "VARCHAR", "JSON with step-specific counts", length=4000),
        ),
        ("run_id", "step"),
        layer="meta",
        distribution="ROUND_ROBIN",
    ),
    Table(
        "meta_quality", "meta", "one row per quality check per run",
        "Results of the data-quality gates.",
        (
            C("run_id", "VARCHAR", "Run id", False, 40),
            C("check_name", "VARCHAR", "Gate name", False, 80),
            C("table_name", "VARCHAR", "Table checked", False, 64),
            C("status", "VARCHAR", "pass | fail", False, 8),
            C("failing_rows", "BIGINT", "Rows that break the rule", False),
            C("sample_keys", "VARCHAR", "Up to 20 offending keys as JSON", length=4000),
            C("checked_at", "TIMESTAMP", "UTC time of the check", False),
        ),
        ("run_id", "check_name", "table_name"),
        layer="meta",
        distribution="ROUND_ROBIN",
    ),
    Table(
        "meta_gap", "meta", "one row per recorded gap",
        "Windows of a listener's history the Web API may have lost (a poll returned a full page of 50 plays after "
        "its cursor), with whether an imported export covers them; loaded from the lake at every build.",
        (
            C("gap_id", "VARCHAR", "Gap id", False, 24),
            C("user_key", "BIGINT", "Listener", False, references="dim_user.user_key"),
            C("gap_start", "TIMESTAMP", "Start of the window (UTC); null: from the beginning of the history"),
            C("gap_end", "TIMESTAMP", "End of the window (UTC): the oldest play the poll returned", False),
            C("detected_at", "TIMESTAMP", "When the collector or a pull recorded it (UTC)", False),
            C("status", "VARCHAR", "open | closed (an export covers the window)", False, 8),
        ),
        ("gap_id",),
        layer="meta",
        distribution="ROUND_ROBIN",
    ),
)


def warehouse_tables() -> list[Table]:
    """Tables built by the SQL models, in dependency order."""
    return [t for t in TABLES.values() if t.layer == "warehouse"]


# --- analytics (issue 6: written by tunelake.analytics.steps, not by the SQL models) ------------------------------
_RUN = C("run_id", "VARCHAR", "Run that computed the row", False, 40)

# Per-user features: name, description. Shares and rates are 0–1; entropies in bits.
USER_FEATURES: tuple[tuple[str, str], ...] = (
    ("log_plays", "ln(1 + music plays)"),
    ("plays_per_active_day", "Music plays per day with any listening"),
    ("hours_per_active_day", "Hours of music per day with any listening"),
    ("active_day_share", "Days with listening ÷ days between first and last play"),
    ("podcast_share", "Episode/audiobook playbacks ÷ all playbacks"),
    ("night_share", "Share of plays starting 00:00–05:59 local"),
    ("morning_share", "Share of plays starting 06:00–11:59 local"),
    ("afternoon_share", "Share of plays starting 12:00–17:59 local"),
    ("evening_share", "Share of plays starting 18:00–23:59 local"),
    ("weekend_share", "Share of plays on Saturday or Sunday"),
    ("sessions_per_active_day", "Sessions per day with listening"),
    ("session_minutes_mean", "Mean session length in minutes (first start to last end)"),
    ("session_plays_mean", "Mean plays per session"),
    ("skip_rate", "Share of plays skipped"),
    ("completion_mean", "Mean completion (ms_played ÷ track length) where the length is known"),
    ("shuffle_rate", "Share of plays with shuffle on"),
    ("artist_entropy", "Shannon entropy of plays over primary artists, bits"),
    ("genre_entropy", "Shannon entropy of plays over track genres, bits"),
    ("discovery_rate", "Share of plays of artists first heard in the month of the play"),
    ("repeat_rate", "1 − distinct tracks ÷ plays"),
    ("mainstreamness", "Mean popularity (0–100) of played tracks where known"),
    ("release_year_mean", "Mean release year of played tracks where known"),
    ("release_year_sd", "Standard deviation of release years of played tracks"),
    ("danceability", "Mean danceability of played tracks with audio features"),
    ("energy", "Mean energy"),
    ("valence", "Mean valence"),
    ("acousticness", "Mean acousticness"),
    ("instrumentalness", "Mean instrumentalness"),
    ("speechiness", "Mean speechiness"),
    ("tempo", "Mean tempo, BPM"),
    ("audio_missing", "Share of plays without audio features (1 = none known; the means are then imputed)"),
    ("popularity_missing", "Share of plays without popularity"),
    ("release_year_missing", "Share of plays without a release year"),
    ("mobile_share", "Share of plays on android/ios"),
    ("desktop_share", "Share of plays on windows/macos/linux"),
    ("web_share", "Share of plays on the web player"),
    ("other_platform_share", "Share of plays on cast devices or other/unknown platforms"),
)

_register(
    Table(
        "user_features", "analytics", "one row per listener",
        "Per-user behaviour features computed from the warehouse; the input of segmentation.",
        (_USER, *(C(n, "DOUBLE", d, False) for n, d in USER_FEATURES), _RUN),
        ("user_key",), layer="analytics", distribution="ROUND_ROBIN",
    ),
    Table(
        "user_segment", "analytics", "one row per listener",
        "The K-means segment of each listener, with a 2-D PCA projection for plots.",
        (
            _USER,
            C("segment", "INTEGER", "Segment number 0…k−1 (largest segment first)", False),
            C("segment_name", "VARCHAR", "Human-readable name from the segment's most distinctive features", False),
            C("x", "DOUBLE", "First principal component of the scaled features", False),
            C("y", "DOUBLE", "Second principal component of the scaled features", False),
            _RUN,
        ),
        ("user_key",), layer="analytics", distribution="ROUND_ROBIN",
    ),
    Table(
        "segment_profile", "analytics", "one row per segment and feature",
        "What characterises each segment: feature mean and its z-score against all listeners.",
        (
            C("segment", "INTEGER", "Segment number", False),
            C("segment_name", "VARCHAR", "Segment name", False),
            C("size", "BIGINT", "Listeners in the segment", False),
            C("share", "DOUBLE", "Listeners in the segment ÷ all listeners", False),
            C("feature", "VARCHAR", "Feature name (a column of user_features)", False, 64),
            C("mean", "DOUBLE", "Mean of the feature in the segment", False),
            C("z_score", "DOUBLE", "(segment mean − overall mean) ÷ overall standard deviation", False),
            _RUN,
        ),
        ("segment", "feature"), layer="analytics", distribution="REPLICATE",
    ),
    Table(
        "segment_selection", "analytics", "one row per number of segments tried",
        "The k-scan behind the automatic choice of k: silhouette (chooses), inertia (elbow), Calinski–Harabasz.",
        (
            C("k", "INTEGER", "Number of segments", False),
            C("silhouette", "DOUBLE", "Mean silhouette coefficient (on a sample for large populations)", False),
            C("inertia", "DOUBLE", "Within-cluster sum of squares of the scaled features", False),
            C("calinski_harabasz", "DOUBLE", "Calinski–Harabasz score", False),
            C("chosen", "BOOLEAN", "True for the k in use", False),
            _RUN,
        ),
        ("k",), layer="analytics", distribution="REPLICATE",
    ),
    Table(
        "rec_evaluation", "analytics", "one row per recommendation method",
        "Offline evaluation on a per-listener time split (fit | validation | test on each listener's own clock): "
        "hyper-parameters chosen on validation, metrics on test over the listeners with enough history; relevant "
        "items are tracks the listener first played in the test period. Intervals are 95% bootstraps over "
        "listeners; empty when no listener could be evaluated.",
        (
            C("method", "VARCHAR", "popularity | segment | content | als", False, 16),
            C("k", "INTEGER", "Cut-off of the ranking metrics", False),
            C("precision_at_k", "DOUBLE", "Mean precision@k over evaluated listeners"),
            C("recall_at_k", "DOUBLE", "Mean recall@k over evaluated listeners"),
            C("recall_low", "DOUBLE", "Lower end of the 95% bootstrap interval of recall@k"),
            C("recall_high", "DOUBLE", "Upper end of the 95% bootstrap interval of recall@k"),
            C("ndcg_at_k", "DOUBLE", "Mean NDCG@k (binary relevance) over evaluated listeners"),
            C("ndcg_low", "DOUBLE", "Lower end of the 95% bootstrap interval of NDCG@k"),
            C("ndcg_high", "DOUBLE", "Upper end of the 95% bootstrap interval of NDCG@k"),
            C("map_at_k", "DOUBLE", "Mean average precision@k over evaluated listeners"),
            C("map_low", "DOUBLE", "Lower end of the 95% bootstrap interval of MAP@k"),
            C("map_high", "DOUBLE", "Upper end of the 95% bootstrap interval of MAP@k"),
            C("coverage", "DOUBLE", "Distinct recommended tracks ÷ tracks in the catalogue"),
            C("novelty", "DOUBLE", "Mean −log2(training popularity share) of recommended tracks, bits"),
            C("diversity", "DOUBLE", "Intra-list diversity: mean share of recommended pairs by different artists"),
            C("delta_ndcg", "DOUBLE", "Mean paired difference in NDCG@k against popularity (empty for popularity)"),
            C("delta_low", "DOUBLE", "Lower end of the 95% paired bootstrap interval of delta_ndcg"),
            C("delta_high", "DOUBLE", "Upper end of the 95% paired bootstrap interval of delta_ndcg"),
            C("params", "VARCHAR", "Hyper-parameters chosen on validation, JSON", False, 400),
            C("val_ndcg", "DOUBLE", "Validation NDCG@k of the chosen parameters (empty when nothing was tuned)"),
            C("val_users", "BIGINT", "Listeners evaluated in the validation period", False),
            C("users", "BIGINT", "Listeners evaluated in the test period", False),
            C("split", "VARCHAR", "How each listener's history was cut", False, 200),
            C("test_start_min", "DATE", "Earliest start of an evaluated listener's test period"),
            C("test_start_max", "DATE", "Latest start of an evaluated listener's test period"),
            C("is_default", "BOOLEAN", "The method used by default: it beats popularity with an interval above zero, "
                                       "else popularity", False),
            C("decision", "VARCHAR", "Why the method is or is not the default, in words", False, 400),
            _RUN,
        ),
        ("method",), layer="analytics", distribution="REPLICATE",
    ),
    Table(
        "recommendations", "analytics", "one row per listener and rank",
        "Tracks recommended to each listener by the default method, with the reason shown to the user.",
        (
            _USER,
            C("rank", "INTEGER", "1-based rank", False),
            _TRACK,
            C("score", "DOUBLE", "Method-specific score (higher is better)", False),
            C("method", "VARCHAR", "Method that produced the row", False, 16),
            C("reason", "VARCHAR", "Why this track, in words", False, 400),
            _RUN,
        ),
        ("user_key", "rank"), layer="analytics", distribution="HASH(user_key)",
    ),
)
