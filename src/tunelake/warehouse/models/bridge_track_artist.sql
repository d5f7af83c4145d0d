-- reads: dim_track, cur_catalog_track_artists
-- Catalogue credits where known; otherwise the primary artist the play names.
SELECT ta.track_id, ta.artist_id, min(ta.position) AS artist_position
FROM cur_catalog_track_artists AS ta
WHERE ta.track_id IN (SELECT track_id FROM dim_track)
GROUP BY ta.track_id, ta.artist_id
UNION ALL
SELECT t.track_id, t.artist_id, 0
FROM dim_track AS t
WHERE NOT t.in_catalog AND t.artist_id IS NOT NULL
