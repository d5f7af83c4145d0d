"""tunelake: Spotify listening data → lake → warehouse → segments, recommendations, dashboard and report."""

__version__ = "0.1.0"
