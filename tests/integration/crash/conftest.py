"""The crash tests share `tests_crash_common` (the driver and lake pictures); under --import-mode=importlib a
test folder is not on sys.path, so this one puts itself there."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
