-- reads: dim_track, cur_catalog_albums
WITH catalog AS (
    SELECT album_id, album_name, artist_id, release_date, release_date_precision, album_type FROM cur_catalog_albums
), referenced AS (
    SELECT album_id, max(album_name) AS album_name, max(artist_id) AS artist_id
    FROM dim_track
    WHERE album_id IS NOT NULL AND album_id NOT IN (SELECT album_id FROM catalog)
    GROUP BY album_id
)
SELECT album_id, album_name, artist_id, release_date, release_date_precision, year(release_date) AS release_year,
       album_type
FROM catalog
UNION ALL
SELECT album_id, album_name, artist_id, NULL, NULL, NULL, NULL
FROM referenced
