-- reads: int_plays_local, dim_track
-- grain: user
WITH base AS (
    SELECT
        p.play_id, p.user_key, p.track_id, t.artist_id, t.album_id,
        p.started_at, p.ended_at, p.ended_at_local, p.started_at_local,
        p.ms_played, p.reason_start, p.reason_end, p.shuffle, p.offline, p.incognito,
        p.platform_norm AS platform, p.conn_country, p.source, p.media_type, p.skipped,
        t.duration_ms
    FROM int_plays_local AS p
    LEFT JOIN dim_track AS t ON t.track_id = p.track_id
    WHERE p.content_type = 'track' AND p.track_id IS NOT NULL
), gaps AS (
    SELECT
        *,
        CASE WHEN lag(ended_at) OVER w IS NULL
                  OR {{ ts_ms('started_at') }} - {{ ts_ms('lag(ended_at) OVER w') }} > {{ session_gap_ms }}
             THEN 1 ELSE 0 END AS new_session
    FROM base
    WINDOW w AS (PARTITION BY user_key ORDER BY started_at, play_id)
)
SELECT
    play_id, user_key, track_id, artist_id, album_id,
    started_at, ended_at, ended_at_local,
    year(started_at_local) * 10000 + month(started_at_local) * 100 + day(started_at_local) AS date_key,
    hour(started_at_local) AS local_hour,
    {{ isodow('started_at_local') }} AS local_weekday,
    ms_played, reason_start, reason_end, shuffle, offline, incognito, platform, conn_country, source,
    -- a scrobble (no ms_played) is a stream: its scrobbler applied the scrobble rule (half the track or 4 minutes)
    coalesce(ms_played >= {{ stream_threshold_ms }}, source IN ('listenbrainz', 'lastfm', 'maloja')) AS is_stream,
    (coalesce(skipped, false)
        OR (coalesce(reason_end IN ('fwdbtn', 'backbtn'), false)
            AND (duration_ms IS NULL OR ms_played < duration_ms))) AS is_skip,
    CASE WHEN duration_ms IS NULL OR duration_ms <= 0 THEN NULL
         ELSE least(CAST(ms_played AS DOUBLE) / duration_ms, 1.0) END AS completion,
    sum(new_session) OVER (PARTITION BY user_key ORDER BY started_at, play_id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_id,
    media_type
FROM gaps
