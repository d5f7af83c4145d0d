-- reads: int_plays_local
-- grain: user
SELECT
    p.play_id, p.user_key,
    CASE WHEN p.content_type = 'audiobook' THEN 'audiobook' ELSE 'episode' END AS content_type,
    coalesce(p.episode_id, p.chapter_id, p.audiobook_id,
             {{ surrogate("'item:' || coalesce(p.show_name, p.audiobook_title, '') || '|' || coalesce(p.episode_name, p.chapter_title, '')") }}) AS item_id,
    coalesce(p.episode_name, p.chapter_title) AS item_name,
    coalesce(p.show_name, p.audiobook_title) AS show_name,
    p.started_at, p.ended_at, p.ended_at_local,
    year(p.started_at_local) * 10000 + month(p.started_at_local) * 100 + day(p.started_at_local) AS date_key,
    hour(p.started_at_local) AS local_hour,
    {{ isodow('p.started_at_local') }} AS local_weekday,
    p.ms_played, p.reason_start, p.reason_end, p.shuffle, p.offline, p.incognito,
    p.platform_norm AS platform, p.conn_country, p.source, p.media_type
FROM int_plays_local AS p
WHERE p.content_type IN ('episode', 'audiobook')
