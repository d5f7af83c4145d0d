-- reads: int_known_tracks, int_artist_names, cur_catalog_tracks, cur_catalog_artist_genres
WITH pt AS (
    SELECT
        p.*,
        coalesce(an.artist_id, {{ surrogate("'artist:' || lower(trim(p.artist_name))") }}) AS play_artist_id,
        {{ surrogate("'album:' || lower(trim(p.artist_name)) || '|' || lower(trim(p.album_name))") }} AS play_album_id
    FROM int_known_tracks AS p
    LEFT JOIN int_artist_names AS an ON an.name_key = lower(trim(p.artist_name))
), ids AS (
    SELECT track_id FROM pt
    UNION
    SELECT track_id FROM cur_catalog_tracks
), genre AS (
    SELECT artist_id, genre FROM cur_catalog_artist_genres WHERE genre_rank = 0
)
SELECT
    ids.track_id,
    coalesce(ct.track_name, pt.track_name) AS track_name,
    CASE WHEN ct.track_id IS NOT NULL THEN ct.artist_id ELSE pt.play_artist_id END AS artist_id,
    coalesce(ct.artist_name, pt.artist_name) AS artist_name,
    CASE WHEN ct.track_id IS NOT NULL THEN ct.album_id ELSE pt.play_album_id END AS album_id,
    coalesce(ct.album_name, pt.album_name) AS album_name,
    ct.duration_ms,
    ct.explicit,
    ct.popularity,
    ct.isrc,
    ct.release_date,
    year(ct.release_date) AS release_year,
    g.genre AS primary_genre,
    ct.danceability, ct.energy, ct.valence, ct.acousticness, ct.instrumentalness,
    ct.speechiness, ct.liveness, ct.loudness, ct.tempo,
    (ct.danceability IS NOT NULL AND ct.energy IS NOT NULL) AS has_audio_features,
    (ct.track_id IS NOT NULL) AS in_catalog
FROM ids
LEFT JOIN cur_catalog_tracks AS ct ON ct.track_id = ids.track_id
LEFT JOIN pt ON pt.track_id = ids.track_id
LEFT JOIN genre AS g ON g.artist_id = CASE WHEN ct.track_id IS NOT NULL THEN ct.artist_id ELSE pt.play_artist_id END
