-- reads: cur_top_items
-- grain: user
SELECT user_key, snapshot_date, time_range, item_type, rank, max(item_id) AS item_id, max(item_name) AS item_name
FROM cur_top_items
GROUP BY user_key, snapshot_date, time_range, item_type, rank
