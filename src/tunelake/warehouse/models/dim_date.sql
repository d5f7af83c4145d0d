-- reads: int_plays_local
WITH bounds AS (
    SELECT min(d) AS lo, max(d) AS hi FROM (
        SELECT CAST(started_at_local AS DATE) AS d FROM int_plays_local
        UNION ALL SELECT CAST(ended_at_local AS DATE) FROM int_plays_local
    ) AS x
), days AS (
    SELECT {{ date_series('lo', 'hi') }} AS d FROM bounds WHERE lo IS NOT NULL
)
SELECT
    year(d) * 10000 + month(d) * 100 + day(d) AS date_key,
    d AS date,
    year(d) AS year,
    quarter(d) AS quarter,
    month(d) AS month,
    CAST(date_trunc('month', d) AS DATE) AS month_start,
    day(d) AS day,
    {{ isodow('d') }} AS iso_weekday,
    {{ day_name('d') }} AS day_name,
    {{ isodow('d') }} >= 6 AS is_weekend,
    weekofyear(d) AS iso_week
FROM days
