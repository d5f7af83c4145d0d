-- reads: agg_user_track_month
-- grain: user
-- Rolled up from agg_user_track_month (a track has one primary artist), not from fact_play: far fewer rows to read.
-- first_month marks the month the user first played the artist.
SELECT
    a.*,
    a.month_start = min(a.month_start) OVER (PARTITION BY a.user_key, a.artist_id) AS first_month
FROM (
    SELECT
        user_key,
        month_start,
        artist_id,
        sum(plays) AS plays,
        sum(streams) AS streams,
        sum(skips) AS skips,
        sum(ms_played) AS ms_played,
        count(*) AS distinct_tracks
    FROM agg_user_track_month
    WHERE artist_id IS NOT NULL
    GROUP BY user_key, month_start, artist_id
) AS a
