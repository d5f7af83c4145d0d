"""The scrobble tests share `listenbrainz_fake` (a local fake of ListenBrainz's submit-listens API); under
--import-mode=importlib a test folder is not on sys.path, so this one puts itself there."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
