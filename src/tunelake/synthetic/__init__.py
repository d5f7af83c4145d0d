"""Deterministic synthetic Spotify world: catalogue, listeners and their exports."""
