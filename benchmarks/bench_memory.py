"""Benchmark: peak memory of ``volsurf report`` and of the oversized-field error (issue 15).

Measures the peak resident memory (``ru_maxrss`` of the run and its chart workers: each measurement runs in a
fresh wrapper process, so the high-water mark is that run's alone) of:

- ``volsurf report`` on the largest real chain of the shared folder (Cboe quotedata, SPX 2026-08-03, 14,456
  rows = 28,912 contracts);
- ``volsurf report`` on a 20x enlargement of it (each row repeated with 20 strike offsets of 0.05 points: more
  strikes on the same expiries, about 289,000 rows = 578,000 contracts), written to a temporary directory,
  never committed;
- ``volsurf inspect`` on a small chain with one 52 MB line (the error path of an oversized field) against
  ``volsurf inspect`` on a 1 KB file that fails at load (the same imports, the same error path): the
  difference must not exceed the file's size.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--chain FILE] [--factor 20] [--skip-large]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LARGEST = ROOT.parent / "shared" / "real_chains" / "cboe_GallegoToscano_svi-volatility-surface" / "spx_quotedata_20260803.csv"
FALLBACK = ROOT / "sample_chains" / "spx_2026-07-31_close.csv"
SMALL = ROOT / "sample_chains" / "spy_2025-08-29_close.csv"

_WRAPPER = """
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, round(time.monotonic() - t0, 2))
print(p.stderr[-400:], file=sys.stderr)
"""


def peak_rss(args: list[str]) -> tuple[int, float, float, str]:
    """(exit code, peak RSS in MB of the run's processes, seconds, end of stderr) of ``volsurf ARGS``."""
    import subprocess

    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, str(ROOT / "cli.py"), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "MPLBACKEND": "Agg"})
    code, kb, secs = p.stdout.split()
    return int(code), int(kb) / 1024, float(secs), p.stderr.strip()


def enlarge(src: Path, dst: Path, factor: int) -> int:
    """Write ``src`` (Cboe quotedata) with every row repeated at ``factor`` strike offsets (0, 0.05, 0.10...):
    same expiries, ``factor`` times the strikes; option symbols rebuilt for the new strikes. Returns the rows."""
    lines = src.read_text(encoding="utf-8-sig").replace("\r\n", "\n").split("\n")
    hi = next(i for i, ln in enumerate(lines) if ln.startswith("Expiration Date,Calls"))
    out = lines[: hi + 1]
    n = 0
    for ln in lines[hi + 1 :]:
        parts = ln.split(",")
        if len(parts) < 22:
            continue
        k = float(parts[11])
        for j in range(factor):
            kk = k + 0.05 * j
            code = f"{round(kk * 1000):08d}"
            row = list(parts)
            row[11] = f"{kk:.2f}"
            row[1] = parts[1][:-8] + code
            row[12] = parts[12][:-8] + code
            out.append(",".join(row))
            n += 1
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chain", type=Path, default=LARGEST if LARGEST.exists() else FALLBACK)
    ap.add_argument("--factor", type=int, default=20)
    ap.add_argument("--skip-large", action="store_true", help="leave out the enlarged chain (the slow part)")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="volsurf_bench_memory_") as tmp:
        t = Path(tmp)
        rows = []
        code, mb, secs, err = peak_rss(["report", str(a.chain), "-o", str(t / "rep1")])
        rows.append((f"report {a.chain.name} ({a.chain.stat().st_size / 1e6:.1f} MB)", code, mb, secs))
        if not a.skip_large:
            big = t / f"enlarged_x{a.factor}.csv"
            t0 = time.monotonic()
            n = enlarge(a.chain, big, a.factor)
            print(f"built {big.name}: {n:,} rows, {big.stat().st_size / 1e6:.1f} MB in {time.monotonic() - t0:.1f} s")
            code, mb, secs, err = peak_rss(["report", str(big), "-o", str(t / "rep2")])
            rows.append((f"report x{a.factor} ({n:,} rows, {big.stat().st_size / 1e6:.1f} MB)", code, mb, secs))
            if code != 0:
                print(err)
        lines = SMALL.read_text(encoding="utf-8").split("\n")
        lines[10] += "Z" * (52 * 1024 * 1024)
        huge = t / "oversized_field.csv"
        huge.write_text("\n".join(lines), encoding="utf-8")
        code0, ok_mb, secs0, _ = peak_rss(["inspect", str(SMALL)])
        rows.append((f"inspect {SMALL.name}", code0, ok_mb, secs0))
        tiny = t / "tiny_error.csv"
        tiny.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # the same error path, a 1 KB file
        code0, base_mb, secs0, _ = peak_rss(["inspect", str(tiny)])
        rows.append(("inspect, a 1 KB file that fails at load (error baseline)", code0, base_mb, secs0))
        code, mb, secs, err = peak_rss(["inspect", str(huge)])
        size = huge.stat().st_size / 2**20
        rows.append((f"inspect, one 52 MB line ({size:.0f} MB file)", code, mb, secs))
        print(f"  error: {err.splitlines()[-1] if err else ''}")
        print(f"  oversized-field error costs {mb - base_mb:.0f} MB over the error baseline for a {size:.0f} MB file")
    print(f"{'run':58s} {'exit':>4s} {'peak MB':>8s} {'s':>6s}")
    for name, code, mb, secs in rows:
        print(f"{name:58s} {code:4d} {mb:8.0f} {secs:6.1f}")


if __name__ == "__main__":
    main()
