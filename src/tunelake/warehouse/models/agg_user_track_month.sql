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
