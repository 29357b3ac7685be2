"""Benchmark: ``volsurf study quarter-end`` on every shared daily series (target: < 10 s for the whole run).

Runs the command exactly as ``scripts/quarter_end_docs.py`` does (same series list: 26 files/columns and the
VIX9D/VIX3M ratio, JSON output, default 5,000 bootstrap resamples and permutations), in a fresh Python process
so start-up (pandas, the exchange calendar) is counted, without charts (``--plot`` draws 27 PNGs and is timed
separately with ``--plot``). Skips with a message when ../shared/real_series is absent.

Run: ``.venv/bin/python benchmarks/bench_study.py [--repeat 3] [--plot]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0


def _docs_module():
    spec = importlib.util.spec_from_file_location("quarter_end_docs", ROOT / "scripts" / "quarter_end_docs.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs (the median is reported)")
    ap.add_argument("--plot", action="store_true", help="also write the charts (into a temporary folder)")
    args = ap.parse_args()
    docs = _docs_module()
    shared = docs.DEFAULT_SHARED
    if not shared.exists():
        print(f"skipped: {shared} not found")
        return 0
    times = []
    n_series = 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            extra = ["--plot", tmp] if args.plot else []
            cmd = [sys.executable, "-c", "from volsurf.cli.main import main; main()", "study", "quarter-end",
                   *docs.study_args(shared), "--format", "json", *extra]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
            times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            print(done.stderr)
            return 1
        n_series = len(json.loads(done.stdout)["series"])
    med = statistics.median(times)
    print(f"study quarter-end: {n_series} series, median {med:.2f} s over {args.repeat} runs "
          f"(min {min(times):.2f} s){' with charts' if args.plot else ''}; target < {TARGET_S:g} s")
    return 0 if (args.plot or med < TARGET_S) else 1


if __name__ == "__main__":
    sys.exit(main())
