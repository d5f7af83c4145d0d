"""Run the tunelake CLI with a fault injected: the process dies (os._exit, like kill -9) at the N-th write point.

Write points are every moment between two steps that change the lake on disk: before a file's bytes are written,
after they are written but before the rename that puts them in place, after the rename, and before and after
every deletion. `CRASH_AT=0` runs to the end and writes the number of points passed to `CRASH_COUNT_FILE`;
`CRASH_ENOSPC=N` raises "No space left on device" at the N-th point instead of dying.

Usage: python driver.py tunelake-args...   (the environment says where to fail)
"""

from __future__ import annotations

import errno
import os
import sys

from fsspec.implementations.local import LocalFileSystem

from tunelake import cli
from tunelake.lake import store

CRASH_AT = int(os.environ.get("CRASH_AT", "0"))
ENOSPC_AT = int(os.environ.get("CRASH_ENOSPC", "0"))
COUNT_FILE = os.environ.get("CRASH_COUNT_FILE")
_count = 0


def point(label: str) -> None:
    global _count
    _count += 1
    if os.environ.get("CRASH_TRACE"):
        sys.stderr.write(f"point {_count}: {label}\n")
    if _count == CRASH_AT:
        os._exit(137)
    if _count == ENOSPC_AT:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


_put, _commit, _rm = store.Lake._put, store.Lake._commit, LocalFileSystem.rm


def put(self, rel, write, private):
    def writing(tmp):
        point(f"write {rel}")
        write(tmp)
        point(f"written {rel}")

    return _put(self, rel, writing, private)


def commit(self, tmp, rel):
    point(f"rename {tmp} -> {rel}")
    _commit(self, tmp, rel)
    point(f"renamed {rel}")


def rm(self, path, *args, **kwargs):
    point(f"delete {path}")
    _rm(self, path, *args, **kwargs)
    point(f"deleted {path}")


store.Lake._put, store.Lake._commit, LocalFileSystem.rm = put, commit, rm


def main() -> None:
    sys.argv = ["tunelake", *sys.argv[1:]]
    try:
        cli.main()
    finally:
        if COUNT_FILE:
            with open(COUNT_FILE, "w") as fh:
                fh.write(str(_count))


if __name__ == "__main__":
    main()
