"""Benchmark: loading the largest real chain, and CLI start-up (``volsurf --help``).

Run on demand: ``.venv/bin/python benchmarks/bench_load.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LARGEST = ROOT / "sample_chains" / "spx_2026-07-31_close.csv"


def main() -> None:
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich

    load(LARGEST)  # warm caches (calendar, imports)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        snap = load(LARGEST)
        times.append(time.perf_counter() - t0)
    print(f"load {LARGEST.name}: {len(snap.frame):,} contracts, median {statistics.median(times)*1e3:.0f} ms, "
          f"best {min(times)*1e3:.0f} ms")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        enrich(snap)
        times.append(time.perf_counter() - t0)
    print(f"enrich (forwards + bid/mid/ask IV + greeks): median {statistics.median(times)*1e3:.0f} ms")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        enrich(snap, quote_ivs=False, greeks=False)
        times.append(time.perf_counter() - t0)
    print(f"enrich light (forwards + mid IV, as tracking uses): median {statistics.median(times)*1e3:.0f} ms")
    cli = [sys.executable, str(ROOT / "cli.py"), "--help"]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(cli, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    print(f"volsurf --help: median {statistics.median(times)*1e3:.0f} ms (process start included)")


if __name__ == "__main__":
    main()
