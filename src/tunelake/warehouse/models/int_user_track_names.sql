-- reads: cur_plays, cur_saved_tracks, cur_playlist_items
-- grain: user
-- Each listener's descriptions of tracks (names as their plays, library and playlists give them) with when each
-- was last seen: int_known_tracks folds these over every listener. Kept per listener so that an incremental build
-- recomputes only the listeners whose data changed.
WITH named AS (
    SELECT user_key, track_id, track_name, artist_name, album_name, ended_at AS seen_at
    FROM cur_plays WHERE content_type = 'track' AND track_id IS NOT NULL
    UNION ALL
    SELECT user_key, track_id, track_name, artist_name, album_name, CAST(NULL AS TIMESTAMP)
    FROM cur_saved_tracks WHERE track_id IS NOT NULL
    UNION ALL
    SELECT user_key, track_id, track_name, artist_name, album_name, CAST(NULL AS TIMESTAMP)
    FROM cur_playlist_items WHERE track_id IS NOT NULL
)
SELECT user_key, track_id, track_name, artist_name, album_name,
       max(coalesce(seen_at, TIMESTAMP '1970-01-01 00:00:00')) AS seen_at
FROM named
GROUP BY user_key, track_id, track_name, artist_name, album_name
