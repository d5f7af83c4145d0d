-- reads: int_plays_local
-- grain: user
-- The first and last local day of each listener's plays: dim_date spans them all.
SELECT user_key, min(d) AS lo, max(d) AS hi FROM (
    SELECT user_key, CAST(started_at_local AS DATE) AS d FROM int_plays_local
    UNION ALL SELECT user_key, CAST(ended_at_local AS DATE) FROM int_plays_local
) AS x
GROUP BY user_key
