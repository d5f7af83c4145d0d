-- reads: fact_play
-- grain: user
SELECT user_key, date_key, local_hour, min(local_weekday) AS local_weekday, count(*) AS plays,
       sum(ms_played) AS ms_played
FROM fact_play
GROUP BY user_key, date_key, local_hour
