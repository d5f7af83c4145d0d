"""Where listening data comes from: privacy exports, the Spotify Web API, catalogue files."""
