-- reads: fact_play, dim_date
-- grain: user
SELECT
    f.user_key,
    f.date_key,
    min(d.date) AS date,
    count(*) AS plays,
    sum(CASE WHEN f.is_stream THEN 1 ELSE 0 END) AS streams,
    sum(CASE WHEN f.is_skip THEN 1 ELSE 0 END) AS skips,
    sum(f.ms_played) AS ms_played,
    count(DISTINCT f.track_id) AS distinct_tracks,
    count(DISTINCT f.artist_id) AS distinct_artists
FROM fact_play AS f
JOIN dim_date AS d ON d.date_key = f.date_key
GROUP BY f.user_key, f.date_key
