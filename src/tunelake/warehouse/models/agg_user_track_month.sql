-- reads: fact_play, dim_date
-- grain: user
-- first_month marks the month a user first played a track, over the whole history, so discovery rates for any
-- period are a filtered sum over this table instead of a scan of every earlier month.
SELECT
    m.*,
    m.month_start = min(m.month_start) OVER (PARTITION BY m.user_key, m.track_id) AS first_month
FROM (
    SELECT
        f.user_key,
        d.month_start,
        f.track_id,
        min(f.artist_id) AS artist_id,
        min(f.album_id) AS album_id,
        count(*) AS plays,
        sum(CASE WHEN f.is_stream THEN 1 ELSE 0 END) AS streams,
        sum(CASE WHEN f.is_skip THEN 1 ELSE 0 END) AS skips,
        sum(f.ms_played) AS ms_played
    FROM fact_play AS f
    JOIN dim_date AS d ON d.date_key = f.date_key
    GROUP BY f.user_key, d.month_start, f.track_id
) AS m
