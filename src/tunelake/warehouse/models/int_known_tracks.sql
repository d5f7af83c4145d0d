-- reads: cur_plays, cur_saved_tracks, cur_playlist_items
-- Tracks as plays, library and playlists describe them: the fallback for tracks that no catalogue describes.
-- One description per track, from the record seen last; among equally recent ones (library and playlist rows have
-- no time) the most complete, then the greatest names, so every engine picks the same one.
WITH named AS (
    SELECT track_id, track_name, artist_name, album_name, ended_at AS seen_at
    FROM cur_plays WHERE content_type = 'track' AND track_id IS NOT NULL
    UNION ALL
    SELECT track_id, track_name, artist_name, album_name, CAST(NULL AS TIMESTAMP)
    FROM cur_saved_tracks WHERE track_id IS NOT NULL
    UNION ALL
    SELECT track_id, track_name, artist_name, album_name, CAST(NULL AS TIMESTAMP)
    FROM cur_playlist_items WHERE track_id IS NOT NULL
), descriptions AS (
    SELECT track_id, track_name, artist_name, album_name,
           max(coalesce(seen_at, TIMESTAMP '1970-01-01 00:00:00')) AS seen_at
    FROM named
    GROUP BY track_id, track_name, artist_name, album_name
)
SELECT track_id, track_name, artist_name, album_name
FROM descriptions
QUALIFY row_number() OVER (
    PARTITION BY track_id
    ORDER BY seen_at DESC, (track_name IS NULL), (artist_name IS NULL), (album_name IS NULL),
             track_name DESC NULLS LAST, artist_name DESC NULLS LAST, album_name DESC NULLS LAST) = 1
