-- reads: dim_artist, cur_catalog_artist_genres
SELECT artist_id, genre, min(genre_rank) AS genre_rank
FROM cur_catalog_artist_genres
WHERE artist_id IN (SELECT artist_id FROM dim_artist)
GROUP BY artist_id, genre
