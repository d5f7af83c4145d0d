-- reads: cur_plays, cur_users, ref_country_tz
-- grain: user
-- Timezone and home country per user: configured timezone, else the dominant conn_country's, else the default.
WITH country_counts AS (
    SELECT user_key, conn_country, count(*) AS n
    FROM cur_plays
    WHERE conn_country IS NOT NULL AND conn_country <> 'ZZ'
    GROUP BY user_key, conn_country
), dominant AS (
    SELECT user_key, conn_country
    FROM country_counts
    QUALIFY row_number() OVER (PARTITION BY user_key ORDER BY n DESC, conn_country) = 1
)
SELECT
    u.user_key,
    u.handle,
    d.conn_country AS country,
    coalesce(u.timezone, r.timezone, '{{ default_timezone }}') AS timezone,
    CASE WHEN u.timezone IS NOT NULL THEN 'configured'
         WHEN r.timezone IS NOT NULL THEN 'inferred'
         ELSE 'default' END AS timezone_source
FROM cur_users AS u
LEFT JOIN dominant AS d ON d.user_key = u.user_key
LEFT JOIN ref_country_tz AS r ON r.country = d.conn_country
