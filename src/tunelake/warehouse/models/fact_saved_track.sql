-- reads: cur_saved_tracks
-- grain: user
SELECT user_key, track_id, min(saved_at) AS saved_at, min(source) AS source
FROM cur_saved_tracks
WHERE track_id IS NOT NULL AND coalesce(item_type, 'track') = 'track'
GROUP BY user_key, track_id
