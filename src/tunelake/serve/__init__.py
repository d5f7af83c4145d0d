"""The web service (`tunelake serve`): accounts, sessions and roles around the dashboard, uploads, connecting
Spotify, and a listener's own data to download or delete. Sits above the dashboard, which it mounts."""
