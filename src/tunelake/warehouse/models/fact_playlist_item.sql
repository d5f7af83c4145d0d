-- reads: cur_playlist_items
-- grain: user
SELECT user_key, playlist_id, max(playlist_name) AS playlist_name, position, max(item_type) AS item_type,
       max(track_id) AS track_id, max(added_at) AS added_at, max(source) AS source
FROM cur_playlist_items
GROUP BY user_key, playlist_id, position
