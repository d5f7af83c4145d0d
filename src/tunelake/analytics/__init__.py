"""Analytics: insight metrics (the one metric layer), user features, listener segments, recommendations."""
