"""Shared benchmark plumbing: scales, work folders, child processes with their peak memory, the machine."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"
RESULTS = ROOT / "benchmarks" / "results"

# Synthetic worlds sized by play count (~18 plays per listener-day in the generator).
SCALES = {
    "1m": {"users": 150, "days": 365},
    "10m": {"users": 1500, "days": 365},
    "100m": {"users": 15000, "days": 365},
}


def scales() -> list[str]:
    """1M and 10M by default; BENCH_SCALE=100m (or a comma list) for more."""
    env = os.environ.get("BENCH_SCALE", "")
    if not env:
        return ["1m", "10m"]
    return [s.strip() for s in env.split(",") if s.strip()]


def world(scale: str, seed: int = 1) -> Path:
    """Generate (once) the synthetic world of a scale."""
    from tunelake.synthetic.world import generate_world

    out = WORK / f"world-{scale}"
    marker = out / "world.json"
    if not marker.exists():
        p = SCALES[scale]
        generate_world(out, users=p["users"], days=p["days"], seed=seed, account_data=False)
    return out


def in_child(code: str, *args: str, timeout: int = 7200) -> dict[str, Any]:
    """Run Python code in a fresh process; it prints one JSON line. Adds the child's peak RSS (MB) and wall time."""
    wrapper = (
        "import json, resource, sys, time\n"
        f"sys.argv = ['bench'] + {list(args)!r}\n"
        "_t0 = time.perf_counter()\n"
        f"{code}\n"
        "result['wall_s'] = round(time.perf_counter() - _t0, 3)\n"
        "result['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)\n"
        "print('@@RESULT@@' + json.dumps(result))\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("@@RESULT@@")][-1]
    return json.loads(line[len("@@RESULT@@"):])


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    import duckdb
    import pyarrow

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1), "os": platform.platform(),
        "python": platform.python_version(), "duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__,
        "load_avg_at_start": os.getloadavg()[0],
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def maxrss_self_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
