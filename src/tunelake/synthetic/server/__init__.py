"""A local fake of the Spotify Web API and accounts service, backed by a synthetic world directory.

The API view of a listener agrees with the export files the world generator wrote for them:

- recently played = the listener's extended-history track plays (`played_at` = the export's `ts` plus a
  deterministic sub-second part, because the real API has millisecond precision and exports have seconds);
- saved tracks = `YourLibrary.json`, playlists = `Playlist1.json` (plus playlists created through the API);
- top artists/tracks = play counts over the last 4 weeks / 6 months / all time before the world's end date;
- catalogue objects = `catalog/*.parquet`.

Paging of `recently-played`: with `after`, the fake returns the *oldest* `limit` plays after the cursor (newest
first inside the page) and a `next` link. The real API only ever exposes the last 50 plays; `recent_limit=50` (the
default in live mode, in `tunelake fake-spotify` and in the API demo) does that too. Without it (the in-process
default of a static server, kept for tests), a client can walk the whole history forward.

Live mode (`live=SPEED`): simulated time runs from the world's end, SPEED× faster than the wall clock, and the
listeners keep listening (`synthetic.live`); `/_live/clock` reads, sets or advances it, and `/_live/truth?user=`
lists every play so far, so a collector can be checked against what really happened.

Modes: full access, or development mode (`dev_mode=True`) where batch `GET /tracks|albums|artists?ids=` and
`/audio-features` answer 403 as they do for new apps, genres/popularity/followers are omitted, and at most 5
listeners may authorise the app. Faults are injected at run time with `FakeSpotify.faults` (Python) or the
`/_fault` admin endpoint (HTTP): 429 with Retry-After, 5xx bursts, slow responses, expiring tokens.

Use it in-process (`with FakeSpotify(world_dir) as srv: srv.url`) or as `tunelake fake-spotify --world DIR`.

One concept per module: `world_view` (the world directory as the API sees it), `objects` (Spotify's JSON
objects), `routes` (the Web API as werkzeug rules and their handlers), `accounts` (login and tokens), `faults`
(fault injection), `live` (the timeline a request sees: static or live with its clock), `responses` (the error
shape) and `app` (the server, and which service a URL belongs to). Like
the rest of `tunelake.synthetic`, it imports nothing from the product code.
"""

from tunelake.synthetic.server.accounts import DEV_MODE_MAX_USERS
from tunelake.synthetic.server.app import REAL_RECENT_LIMIT, FakeSpotify, serve
from tunelake.synthetic.server.faults import FaultRule, Faults, parse_fault_spec
from tunelake.synthetic.server.live import LiveTimeline, SimClock, Timeline
from tunelake.synthetic.server.objects import OPEN
from tunelake.synthetic.server.responses import ApiError
from tunelake.synthetic.server.routes import TIME_RANGES
from tunelake.synthetic.server.world_view import Listener, World, base62_id

__all__ = [
    "DEV_MODE_MAX_USERS",
    "OPEN",
    "REAL_RECENT_LIMIT",
    "TIME_RANGES",
    "ApiError",
    "FakeSpotify",
    "FaultRule",
    "Faults",
    "Listener",
    "LiveTimeline",
    "SimClock",
    "Timeline",
    "World",
    "base62_id",
    "parse_fault_spec",
    "serve",
]
