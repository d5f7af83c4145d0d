-- Tracks as plays, library and playlists describe them (names seen last win): the fallback for tracks that no
-- catalogue describes.
WITH named AS (
    SELECT track_id, track_name, artist_name, album_name, ended_at AS seen_at
    FROM cur_plays WHERE content_type = 'track' AND track_id IS NOT NULL
    UNION ALL
    SELECT track_id, track_name, artist_name, album_name, CAST(NULL AS TIMESTAMP)
    FROM cur_saved_tracks WHERE track_id IS NOT NULL
    UNION ALL
    SELECT track_id, track_name, artist_name, album_name, CAST(NULL AS TIMESTAMP)
    FROM cur_playlist_items WHERE track_id IS NOT NULL
)
SELECT
    track_id,
    max_by(track_name, coalesce(seen_at, TIMESTAMP '1970-01-01 00:00:00')) AS track_name,
    max_by(artist_name, coalesce(seen_at, TIMESTAMP '1970-01-01 00:00:00')) AS artist_name,
    max_by(album_name, coalesce(seen_at, TIMESTAMP '1970-01-01 00:00:00')) AS album_name
FROM named
GROUP BY track_id
