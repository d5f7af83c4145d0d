"""The lake: raw, curated and quarantine zones on any fsspec URL, with a manifest of batches."""
