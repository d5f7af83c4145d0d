-- reads: int_user_tz, cur_plays
-- grain: user
-- Every accepted playback with UTC start/end and local times in the user's timezone. Scrobbles carry their start
-- (listened_at) and no ms_played; every other source gives its end and ms_played. A scrobble that knows only its
-- end starts, as far as anyone can tell, at its end.
WITH p AS (
    SELECT
        p.*,
        u.timezone,
        coalesce(p.listened_at, {{ ms_ts(ts_ms('p.ended_at') ~ ' - p.ms_played') }}, p.ended_at) AS started_at
    FROM cur_plays AS p
    JOIN int_user_tz AS u ON u.user_key = p.user_key
)
SELECT
    p.*,
    {{ to_local('p.ended_at', 'p.timezone') }} AS ended_at_local,
    {{ to_local('p.started_at', 'p.timezone') }} AS started_at_local,
    CASE
        WHEN p.platform IS NULL THEN NULL
        WHEN lower(p.platform) LIKE '%android%' THEN 'android'
        WHEN lower(p.platform) LIKE '%ios%' OR lower(p.platform) LIKE '%iphone%' OR lower(p.platform) LIKE '%ipad%' THEN 'ios'
        WHEN lower(p.platform) LIKE '%windows%' THEN 'windows'
        WHEN lower(p.platform) LIKE '%osx%' OR lower(p.platform) LIKE '%os x%' OR lower(p.platform) LIKE '%macos%' THEN 'macos'
        WHEN lower(p.platform) LIKE '%linux%' THEN 'linux'
        WHEN lower(p.platform) LIKE '%web%' THEN 'web'
        WHEN lower(p.platform) LIKE '%cast%' OR lower(p.platform) LIKE '%sonos%' OR lower(p.platform) LIKE '%tv%'
             OR lower(p.platform) LIKE '%partner%' OR lower(p.platform) LIKE '%speaker%' THEN 'cast'
        ELSE 'other'
    END AS platform_norm
FROM p
