"""The metric registry: every insight metric named once, with its SQL (where it is one aggregate over fact_play),
its DAX measure for the generated Power BI model, its format and the insight outputs it stands for.

It lives in the warehouse layer so that both `analytics/insights.py` (which builds its headline SQL from it) and
`warehouse/powerbi/` (which writes a DAX measure for each entry) read the same list; a test proves that every
number an insight returns has an entry here, and that every measure in the generated model has one.
"""

from __future__ import annotations

from dataclasses import dataclass

AUDIO_FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness", "speechiness",
                  "liveness", "loudness", "tempo")

_LIST_OUTPUTS = ("top_artists", "top_tracks", "top_albums", "top_genres")


@dataclass(frozen=True)
class Metric:
    """One metric. `outputs` are the (insight function, field) pairs whose values this metric computes;
    `sql` is an aggregate over fact_play (alias-free) when the metric is one; `dax` is None only with a reason."""

    name: str  # the Power BI measure name
    description: str
    folder: str  # display folder in Power BI
    format: str  # Power BI format string
    outputs: tuple[tuple[str, str], ...]
    dax: str | None
    table: str = "fact_play"  # the measure's home table in the model
    sql: str | None = None
    no_dax: str = ""  # why there is no measure, when dax is None


def _out(field: str, *functions: str) -> tuple[tuple[str, str], ...]:
    return tuple((fn, field) for fn in functions)


_COUNT = "#,0"
_DEC1 = "#,0.0"
_DEC2 = "#,0.00"
_PCT = "0.0%"
_DATE = "yyyy-mm-dd"

# One row per listening session (a user's session_id), for the session measures.
_SESSIONS = "SUMMARIZE(fact_play, fact_play[user_key], fact_play[session_id])"
_SESSION_MINUTES = ("DATEDIFF(CALCULATE(MIN(fact_play[started_at])), CALCULATE(MAX(fact_play[ended_at])), SECOND) "
                    "/ 60")
_KNOWN_ARTIST_TRACK_PLAYS = ("CALCULATE(SUM(agg_user_track_month[plays]), "
                             "NOT(ISBLANK(agg_user_track_month[artist_id])))")


def _entropy(rows: str) -> str:
    return (f"VAR t = {rows}\n"
            "VAR n = SUMX(t, [@p])\n"
            "RETURN IF(n > 0, 0 - SUMX(t, DIVIDE([@p], n) * LOG(DIVIDE([@p], n), 2)))")


_ARTIST_ROWS = ("FILTER(ADDCOLUMNS(SUMMARIZE(fact_play, fact_play[artist_id]), \"@p\", "
                "CALCULATE(COUNTROWS(fact_play))), NOT(ISBLANK(fact_play[artist_id])))")
_GENRE_ROWS = ("FILTER(ADDCOLUMNS(SUMMARIZE(fact_play, dim_track[primary_genre]), \"@p\", "
               "CALCULATE(COUNTROWS(fact_play))), NOT(ISBLANK(dim_track[primary_genre])))")


def _audio(feature: str) -> Metric:
    return Metric(
        f"Mean {feature}", f"Play-weighted mean {feature} over plays of tracks whose audio features are known",
        "Taste\\Audio profile", _DEC2 if feature not in ("loudness", "tempo") else _DEC1,
        _out(feature, "audio_profile"),
        f"CALCULATE(DIVIDE(SUMX(fact_play, RELATED(dim_track[{feature}])), COUNTROWS(fact_play)), "
        "dim_track[has_audio_features] = TRUE())",
    )


METRICS: tuple[Metric, ...] = (
    # --- listening ---------------------------------------------------------------------------------------------
    Metric("Plays", "Music playbacks (every playback, not only streams)", "Listening", _COUNT,
           _out("plays", "kpis", "listening_over_time", *_LIST_OUTPUTS, "hour_weekday_heatmap", "sessions",
                "skip_completion", "eras", "platforms"),
           "COUNTROWS(fact_play)", sql="count(*)"),
    Metric("Streams", "Playbacks of at least 30 s (is_stream, Spotify's rule)", "Listening", _COUNT,
           _out("streams", "kpis", "listening_over_time", *_LIST_OUTPUTS),
           "CALCULATE(COUNTROWS(fact_play), fact_play[is_stream] = TRUE())",
           sql="count(*) FILTER (WHERE is_stream)"),
    Metric("Hours", "Hours listened: sum(ms_played) / 3 600 000 over all plays", "Listening", _DEC1,
           _out("hours", "kpis", "listening_over_time", *_LIST_OUTPUTS, "hour_weekday_heatmap", "sessions", "eras",
                "platforms"),
           "DIVIDE(SUM(fact_play[ms_played]), 3600000)", sql="coalesce(sum(ms_played), 0) / 3600000.0"),
    Metric("Listeners", "Distinct listeners with plays", "Listening", _COUNT,
           _out("listeners", "kpis", "listening_over_time", *_LIST_OUTPUTS),
           "DISTINCTCOUNT(fact_play[user_key])", sql="count(DISTINCT user_key)"),
    Metric("Distinct tracks", "Distinct tracks played", "Listening", _COUNT, _out("distinct_tracks", "kpis"),
           "DISTINCTCOUNT(fact_play[track_id])", sql="count(DISTINCT track_id)"),
    Metric("Distinct artists", "Distinct primary artists played (unknown artists not counted)", "Listening", _COUNT,
           (*_out("distinct_artists", "kpis"), ("diversity", "artists")),
           "DISTINCTCOUNTNOBLANK(fact_play[artist_id])", sql="count(DISTINCT artist_id)"),
    Metric("Skips", "Skipped playbacks (is_skip)", "Listening", _COUNT,
           _out("skips", "kpis", "listening_over_time", "skip_completion"),
           "CALCULATE(COUNTROWS(fact_play), fact_play[is_skip] = TRUE())", sql="count(*) FILTER (WHERE is_skip)"),
    Metric("First play date", "Local date of the first play", "Listening", _DATE, _out("first_date", "kpis"),
           "CALCULATE(MIN(dim_date[date]), fact_play)", sql="min(date_key)"),
    Metric("Last play date", "Local date of the last play", "Listening", _DATE, _out("last_date", "kpis"),
           "CALCULATE(MAX(dim_date[date]), fact_play)", sql="max(date_key)"),
    # --- behaviour ---------------------------------------------------------------------------------------------
    Metric("Skip rate", "Skips ÷ plays; blank without plays", "Behaviour", _PCT,
           _out("skip_rate", "kpis", "skip_completion"),
           "DIVIDE([Skips], [Plays])", sql="count(*) FILTER (WHERE is_skip) / nullif(count(*), 0)"),
    Metric("Mean completion", "Mean ms_played ÷ track length, over plays whose length is known", "Behaviour", _PCT,
           _out("mean_completion", "kpis", "skip_completion"),
           "AVERAGE(fact_play[completion])", sql="avg(completion)"),
    Metric("Full listen rate", "Share of plays with completion ≥ 0.9, among plays whose length is known",
           "Behaviour", _PCT, _out("full_listen_rate", "skip_completion"),
           "DIVIDE(CALCULATE(COUNTROWS(fact_play), fact_play[completion] >= 0.9), COUNT(fact_play[completion]))"),
    # --- sessions ----------------------------------------------------------------------------------------------
    Metric("Sessions", "Listening sessions (a gap over session_gap_minutes starts a new one)", "Sessions", _COUNT,
           _out("sessions", "session_stats"), f"COUNTROWS({_SESSIONS})"),
    Metric("Mean plays per session", "Plays ÷ sessions", "Sessions", _DEC1, _out("mean_plays", "session_stats"),
           "DIVIDE([Plays], [Sessions])"),
    Metric("Median plays per session", "Median plays of a session", "Sessions", _DEC1,
           _out("median_plays", "session_stats"), f"MEDIANX({_SESSIONS}, CALCULATE(COUNTROWS(fact_play)))"),
    Metric("Mean session minutes", "Mean session length, first start to last end (one session: its length)",
           "Sessions", _DEC1, (("session_stats", "mean_minutes"), ("sessions", "duration_min")),
           f"AVERAGEX({_SESSIONS}, {_SESSION_MINUTES})"),
    Metric("Median session minutes", "Median session length in minutes", "Sessions", _DEC1,
           _out("median_minutes", "session_stats"), f"MEDIANX({_SESSIONS}, {_SESSION_MINUTES})"),
    Metric("Longest session minutes", "Longest session in minutes", "Sessions", _DEC1,
           _out("longest_minutes", "session_stats"), f"MAXX({_SESSIONS}, {_SESSION_MINUTES})"),
    Metric("Sessions per active day", "Sessions ÷ (listener, day) pairs with any play", "Sessions", _DEC2,
           _out("sessions_per_active_day", "session_stats"),
           "DIVIDE([Sessions], COUNTROWS(SUMMARIZE(fact_play, fact_play[user_key], fact_play[date_key])))"),
    Metric("Longest streak days", "Longest run of consecutive local days with any play", "Sessions", _COUNT,
           _out("days", "streaks"), None,
           no_dax="a gaps-and-islands scan over each listener's days; the dashboard and report show it from SQL"),
    # --- discovery ---------------------------------------------------------------------------------------------
    Metric("New artists", "Artists a listener played for the first time in the month (whole history)",
           "Discovery", _COUNT, _out("new_artists", "discovery_rate"),
           "CALCULATE(COUNTROWS(agg_user_artist_month), agg_user_artist_month[first_month] = TRUE())",
           table="agg_user_artist_month"),
    Metric("New tracks", "Tracks a listener played for the first time in the month (tracks with a known artist)",
           "Discovery", _COUNT, _out("new_tracks", "discovery_rate"),
           "CALCULATE(COUNTROWS(agg_user_track_month), agg_user_track_month[first_month] = TRUE(), "
           "NOT(ISBLANK(agg_user_track_month[artist_id])))", table="agg_user_track_month"),
    Metric("Plays with known artist", "Plays of tracks whose primary artist is known (the discovery denominator)",
           "Discovery", _COUNT, _out("plays", "discovery_rate"), _KNOWN_ARTIST_TRACK_PLAYS,
           table="agg_user_track_month"),
    Metric("Artist discovery rate", "Plays of artists first heard that month ÷ plays with a known artist",
           "Discovery", _PCT, _out("artist_discovery_rate", "discovery_rate"),
           "DIVIDE(CALCULATE(SUM(agg_user_artist_month[plays]), agg_user_artist_month[first_month] = TRUE()), "
           f"{_KNOWN_ARTIST_TRACK_PLAYS})", table="agg_user_artist_month"),
    Metric("Track discovery rate", "Plays of tracks first heard that month ÷ plays with a known artist",
           "Discovery", _PCT, _out("track_discovery_rate", "discovery_rate"),
           "DIVIDE(CALCULATE(SUM(agg_user_track_month[plays]), agg_user_track_month[first_month] = TRUE(), "
           f"NOT(ISBLANK(agg_user_track_month[artist_id]))), {_KNOWN_ARTIST_TRACK_PLAYS})",
           table="agg_user_track_month"),
    # --- taste -------------------------------------------------------------------------------------------------
    Metric("Genre share of hours", "Hours ÷ hours of plays whose genre is known", "Taste", _PCT,
           _out("share", "top_genres"),
           "DIVIDE([Hours], CALCULATE([Hours], REMOVEFILTERS(dim_track[primary_genre]), "
           "NOT(ISBLANK(dim_track[primary_genre]))))"),
    Metric("Artist entropy bits", "Shannon entropy of plays over primary artists, bits", "Taste\\Diversity",
           _DEC2, _out("artist_entropy_bits", "diversity"), _entropy(_ARTIST_ROWS)),
    Metric("Genre entropy bits", "Shannon entropy of plays over track genres, bits", "Taste\\Diversity", _DEC2,
           _out("genre_entropy_bits", "diversity"), _entropy(_GENRE_ROWS)),
    Metric("Genres", "Distinct genres played (tracks with a known genre)", "Taste\\Diversity", _COUNT,
           _out("genres", "diversity"),
           "COUNTROWS(FILTER(SUMMARIZE(fact_play, dim_track[primary_genre]), NOT(ISBLANK(dim_track[primary_genre]))))"),
    Metric("Artist entropy max bits", "log2(artists played): the entropy of an even spread", "Taste\\Diversity",
           _DEC2, _out("artist_entropy_max_bits", "diversity"),
           "VAR n = [Distinct artists]\nRETURN IF(n > 0, LOG(n, 2))"),
    Metric("Genre entropy max bits", "log2(genres played): the entropy of an even spread", "Taste\\Diversity",
           _DEC2, _out("genre_entropy_max_bits", "diversity"), "VAR n = [Genres]\nRETURN IF(n > 0, LOG(n, 2))"),
    Metric("Mean popularity", "Play-weighted mean Spotify popularity (0–100) over plays whose popularity is known",
           "Taste\\Mainstreamness", _DEC1, _out("mean_popularity", "mainstreamness"),
           "CALCULATE(DIVIDE(SUMX(fact_play, RELATED(dim_track[popularity])), COUNTROWS(fact_play)), "
           "NOT(ISBLANK(dim_track[popularity])))"),
    Metric("Plays with popularity", "Plays of tracks whose popularity is known", "Taste\\Mainstreamness", _COUNT,
           _out("plays_with_popularity", "mainstreamness"),
           "CALCULATE(COUNTROWS(fact_play), NOT(ISBLANK(dim_track[popularity])))"),
    Metric("Popularity coverage", "Plays with popularity ÷ plays", "Taste\\Mainstreamness", _PCT,
           _out("coverage", "mainstreamness"), "DIVIDE([Plays with popularity], [Plays])"),
    Metric("Era share of plays", "Plays ÷ plays whose release year is known", "Taste", _PCT, _out("share", "eras"),
           "DIVIDE([Plays], CALCULATE([Plays], REMOVEFILTERS(dim_track[release_year], dim_track[release_decade]), "
           "NOT(ISBLANK(dim_track[release_year]))))"),
    Metric("Platform share of plays", "Plays ÷ plays on every platform", "Behaviour", _PCT,
           _out("share", "platforms"), "DIVIDE([Plays], CALCULATE([Plays], REMOVEFILTERS(fact_play[platform])))"),
    *(_audio(a) for a in AUDIO_FEATURES),
    Metric("Plays with audio features", "Plays of tracks whose audio features are known", "Taste\\Audio profile",
           _COUNT, _out("plays_with_features", "audio_profile"),
           "CALCULATE(COUNTROWS(fact_play), dim_track[has_audio_features] = TRUE())"),
    Metric("Audio feature coverage", "Plays with audio features ÷ plays", "Taste\\Audio profile", _PCT,
           _out("coverage", "audio_profile"), "DIVIDE([Plays with audio features], [Plays])"),
)

# Fields of insight outputs that are not metrics but the things metrics are grouped by: the model column that
# carries each (a visual puts the column on an axis and a measure on the values), or None with why there is none.
DIMENSIONS: dict[str, str | None] = {
    "period": "dim_date.date",
    "month": "dim_date.month_start",
    "start": "dim_date.date",
    "end": "dim_date.date",
    "weekday": "fact_play.local_weekday",
    "hour": "fact_play.local_hour",
    "platform": "fact_play.platform",
    "session_id": "fact_play.session_id",
    "started_at": "fact_play.started_at",
    "ended_at": "fact_play.ended_at",
    "user_key": "dim_user.user_key",
    "artist_id": "dim_artist.artist_id",
    "artist_name": "dim_artist.artist_name",
    "track_id": "dim_track.track_id",
    "track_name": "dim_track.track_name",
    "album_id": "dim_album.album_id",
    "album_name": "dim_album.album_name",
    "release_year": "dim_album.release_year",
    "genre": "dim_track.primary_genre",
    "era": "dim_track.release_decade",
    "rank": None,  # the order of a top list: a visual's sort by a measure, not a field
}


def metric(name: str) -> Metric:
    """The metric called `name` (the Power BI measure name)."""
    for m in METRICS:
        if m.name == name:
            return m
    raise KeyError(f"no metric {name!r}")


def kpi_sql() -> dict[str, str]:
    """kpis field → its aggregate SQL over fact_play: what `insights.kpis` selects."""
    return {field: m.sql for m in METRICS if m.sql for fn, field in m.outputs if fn == "kpis"}
