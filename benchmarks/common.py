"""Shared benchmark plumbing: scales, work folders, child processes with their peak memory, the machine."""

from __future__ import annotations

import json
import math
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
    "0.1m": {"users": 15, "days": 365},  # for trying a benchmark out, not for results
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
        "result['peak_rss_largest_child_mb'] = round(\n"
        "    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)\n"
        "print('\\n@@RESULT@@' + json.dumps(result))\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    # The marker may follow a progress line the child left without a newline (a 10M run once lost its result that
    # way), so it is looked for anywhere in a line.
    lines = [x.split("@@RESULT@@", 1)[1] for x in proc.stdout.splitlines() if "@@RESULT@@" in x]
    if not lines:
        raise RuntimeError(f"benchmark child printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


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


def dir_mb(path: Path) -> float:
    """Disk used by the files under a folder, in MB."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
    return round(total / 1024**2, 1)


def maxrss_self_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- shared child-process snippets and helpers (used by bench_import and bench_scale) ---------------------------

# Every listener of a world (argv[1]) imported through the regular importer into a workspace (argv[2]).
IMPORT_ALL = """
from pathlib import Path
from tunelake.workspace import open_workspace
from tunelake.curate.parallel import import_many
cfg = open_workspace(sys.argv[2])
workers = int(__import__("os").environ.get("BENCH_IMPORT_WORKERS") or 0)  # 0 = one process per core
jobs = [(d.name, [str(d)]) for d in sorted((Path(sys.argv[1]) / "exports").iterdir()) if d.is_dir()]
summaries = import_many(cfg, jobs, workers=workers)
read = sum(s.total("read") for s in summaries)
accepted = sum(s.total("accepted") for s in summaries)
n = workers or min(len(jobs), __import__("os").cpu_count())
result = {"plays": read, "accepted": accepted, "workers": n, "spawned_workers": n - 1 if n > 1 else 0}
"""


def warm_page_cache(folder: Path) -> float:
    """Read every file under a folder once (untimed), so a timed phase reads from memory whatever ran before it —
    the import and the pandas baseline must not differ by who read the files first. Returns the MB read."""
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                while chunk := fh.read(1 << 24):
                    total += len(chunk)
    return round(total / 1024**2, 1)


def engines() -> list[str]:
    """BENCH_ENGINES=duckdb,spark (the default) picks the warehouse engines a benchmark runs on."""
    env = os.environ.get("BENCH_ENGINES", "") or "duckdb,spark"
    return [e.strip() for e in env.split(",") if e.strip()]


def world_in_child(scale: str, seed: int = 1) -> dict[str, Any]:
    """`world(scale)`, generated in a child process so the caller's memory stays small; says how long it took."""
    out = WORK / f"world-{scale}"
    if (out / "world.json").exists():
        return {"cached": True, "path": str(out)}
    code = (
        "from benchmarks.common import SCALES, world\n"
        "from tunelake.synthetic.world import generate_world\n"
        "p = SCALES[sys.argv[1]]\n"
        "s = generate_world(sys.argv[2], users=p['users'], days=p['days'], seed=int(sys.argv[3]), "
        "account_data=False)\n"
        "result = {'plays': s.track_plays + s.episode_plays + s.video_plays, 'bytes': s.bytes_written}\n"
    )
    res = in_child(code, scale, str(out), str(seed), timeout=6 * 3600)
    return {"cached": False, "path": str(out), **res}


def tree_peak_rss_mb(pid: int | None = None) -> float:
    """Sum of the peak RSS (VmHWM) of every live descendant of a process (e.g. Spark's JVM under a Python
    child), which RUSAGE_SELF does not see. An upper bound when the peaks did not coincide."""
    pid = pid or os.getpid()
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    total_kb, todo = 0, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return round(total_kb / 1024, 1)


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p95/max in milliseconds of repeated timings (nearest-rank, no interpolation)."""
    xs = sorted(seconds)
    if not xs:
        return {}

    def rank(q: float) -> float:
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]

    return {"runs": len(xs), "p50_ms": round(rank(0.50) * 1000, 2), "p95_ms": round(rank(0.95) * 1000, 2),
            "max_ms": round(xs[-1] * 1000, 2)}
