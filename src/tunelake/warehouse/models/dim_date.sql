-- reads: int_user_date_bounds
WITH bounds AS (
    SELECT min(lo) AS lo, max(hi) AS hi FROM int_user_date_bounds
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
