"""The Spotify Web API through Spotipy: per-user PKCE login and token cache (`auth`), the client with tunelake's
retry policy (`client`), API objects as curated-shaped rows (`rows`) and writing a playlist back (`playlist`).
Pulling into the lake is curation: `tunelake.curate.pull` and `tunelake.curate.enrich`."""
