"""Curated zone: typed, validated, deduplicated Parquet with personal data handled."""
