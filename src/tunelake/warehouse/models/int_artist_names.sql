-- reads: cur_catalog_artists
-- Catalogue artists reachable by name: only names that denote exactly one artist are used to resolve plays.
SELECT lower(trim(artist_name)) AS name_key, min(artist_id) AS artist_id
FROM cur_catalog_artists
WHERE artist_name IS NOT NULL
GROUP BY lower(trim(artist_name))
HAVING count(DISTINCT artist_id) = 1
