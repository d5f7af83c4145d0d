"""tunelake: Spotify listening data → lake → warehouse → segments, recommendations, dashboard and report."""

import os

# numpy checks its BLAS with a dot product when it is imported; OpenBLAS's worker threads then spin 2**28 cycles
# (~0.1 s of a core) before they sleep, in every process tunelake starts. 2**20 cycles (< 1 ms) keeps them as hot
# between the calls of one computation. A value the user set wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

__version__ = "0.1.0"
