-- reads: int_user_tz, fact_play
-- grain: user
SELECT
    u.user_key, u.handle, u.country, u.timezone, u.timezone_source,
    min(f.ended_at) AS first_played_at,
    max(f.ended_at) AS last_played_at,
    count(f.play_id) AS plays
FROM int_user_tz AS u
LEFT JOIN fact_play AS f ON f.user_key = u.user_key
GROUP BY u.user_key, u.handle, u.country, u.timezone, u.timezone_source
