-- reads: int_user_track_names
-- Tracks as plays, library and playlists describe them: the fallback for tracks that no catalogue describes.
-- One description per track, from the record seen last; among equally recent ones (library and playlist rows have
-- no time) the most complete, then the greatest names, so every engine picks the same one.
WITH descriptions AS (
    SELECT track_id, track_name, artist_name, album_name, max(seen_at) AS seen_at
    FROM int_user_track_names
    GROUP BY track_id, track_name, artist_name, album_name
)
SELECT track_id, track_name, artist_name, album_name
FROM descriptions
QUALIFY row_number() OVER (
    PARTITION BY track_id
    ORDER BY seen_at DESC, (track_name IS NULL), (artist_name IS NULL), (album_name IS NULL),
             track_name DESC NULLS LAST, artist_name DESC NULLS LAST, album_name DESC NULLS LAST) = 1
