-- reads: dim_track, cur_catalog_artists, cur_catalog_artist_genres
-- Catalogue artists, plus surrogate artists for names only the plays know.
WITH genre AS (
    SELECT artist_id, genre FROM cur_catalog_artist_genres WHERE genre_rank = 0
), catalog AS (
    SELECT artist_id, artist_name, popularity, followers, is_surrogate FROM cur_catalog_artists
), referenced AS (
    SELECT artist_id, max(artist_name) AS artist_name
    FROM dim_track
    WHERE artist_id IS NOT NULL AND artist_id NOT IN (SELECT artist_id FROM catalog)
    GROUP BY artist_id
)
SELECT c.artist_id, c.artist_name, c.popularity, c.followers, g.genre AS primary_genre, c.is_surrogate
FROM catalog AS c LEFT JOIN genre AS g ON g.artist_id = c.artist_id
UNION ALL
SELECT r.artist_id, r.artist_name, NULL, NULL, NULL, true
FROM referenced AS r
