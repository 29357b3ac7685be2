"""Benchmark: the Parquet history store (``volsurf ingest``, ``track --store``, ``query``).

Generates N snapshots (date-shifted, quote-perturbed replays of one real chain of the shared folder, ~10,000
contracts by default; written as canonical CSV into a temporary directory, never committed), ingests them and
prints:

- snapshots per second with the local engine (default settings: a process pool of one worker per core) and
  with Dask at 1 and 2 workers (LocalCluster; scaling ratio 2 workers / 1 worker), N = ``--n-small``;
- peak memory per worker (the worker processes' resident-memory high-water mark) for N = ``--n-small`` and
  N = ``--n-large`` (must not grow with N);
- store bytes per snapshot;
- ``track --store`` over all N = ``--n-large`` snapshots (the function, and the CLI as a user runs it);
- a ``query`` grouping all contracts of the large store by expiry bucket.

Targets on the 2-core machine: >= 4 snapshots/s with default settings on 2 workers, 2 workers >= 1.7x one,
peak memory per worker < 1 GB, ``track --store`` on 1,000 snapshots < 1 s, the grouping query < 2 s.

Run: ``.venv/bin/python benchmarks/bench_store.py [--n-small 100] [--n-large 1000] [--chain FILE]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHAIN = ROOT.parent / "shared" / "real_chains" / "cboe_carlosjimenezdiaz_GEX_Python" / "2023-09-14" / "xsp_quotedata.csv"
FALLBACK_CHAIN = ROOT / "sample_chains" / "spx_2026-07-31_close.csv"

GROUP_SQL = """
SELECT CASE WHEN t * 365 <= 7 THEN '0-7d' WHEN t * 365 <= 30 THEN '8-30d' WHEN t * 365 <= 90 THEN '31-90d'
            WHEN t * 365 <= 365 THEN '91-365d' ELSE '>1y' END AS bucket,
       count(*) AS contracts, sum(open_interest) AS open_interest, avg(iv_mid) AS avg_iv_mid
FROM contracts GROUP BY 1 ORDER BY 1
"""


def make_chains(chain: Path, directory: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` replays of ``chain`` on consecutive sessions ending before the chain's own date: expiries shifted by
    the same number of calendar days (weekday and settlement time kept), quotes scaled per expiry and jittered per
    contract, volume and open interest perturbed."""
    from volsurf.io import load, write_canonical
    from volsurf.market.calendar import session_open_close, sessions_between
    from volsurf.market.snapshot import Snapshot, SnapshotMeta

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = load(chain)
    d0 = base.meta.trade_date
    days = sessions_between(d0 - pd.Timedelta(days=int(n * 1.6) + 10), d0)[-n:]
    f0 = base.frame
    exp_codes, expiries = pd.factorize(f0["expiry"])
    kind = np.where(f0["type"] == "call", "C", "P").astype(object)
    strike_txt = (f0["strike"] * 1000).round().astype(int).astype(str).str.zfill(8).to_numpy(dtype=object)
    root = f0["root"].to_numpy(dtype=object)
    bid0, ask0 = f0["bid"].to_numpy(dtype=float), f0["ask"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    paths = []
    for day in days:
        shift = pd.Timestamp(day) - pd.Timestamp(d0)
        ex = expiries + shift
        f = f0.copy()
        f["expiry"] = ex.take(exp_codes)
        f["expiry_date"] = np.asarray(ex.strftime("%Y-%m-%d"), dtype=object)[exp_codes]
        f["contract"] = root + np.asarray(ex.strftime("%y%m%d"), dtype=object)[exp_codes] + kind + strike_txt
        scale = np.exp(0.03 * rng.standard_normal(len(expiries)))[exp_codes]
        jitter = 1.0 + 0.002 * rng.standard_normal(len(f))
        bid = np.round(bid0 * scale * jitter, 2)
        ask = np.round(np.maximum(ask0 * scale * jitter, bid), 2)
        f["bid"], f["ask"] = bid, ask
        f["open_interest"] = np.round(f0["open_interest"].to_numpy(dtype=float) * rng.uniform(0.9, 1.1, len(f)))
        f["volume"] = np.round(f0["volume"].to_numpy(dtype=float) * rng.uniform(0.5, 1.5, len(f)))
        _, close = session_open_close(day)
        meta = SnapshotMeta(underlying=base.meta.underlying, spot=base.meta.spot, quote_time=close, trade_date=day,
                            valuation_time=close, source_format="canonical", source_file=f"replay_{day}.csv",
                            underlying_name=base.meta.underlying_name)
        p = directory / f"{base.meta.underlying.lower()}_{day}.csv"
        write_canonical(Snapshot(frame=f, meta=meta), p)
        paths.append(str(p))
    return paths


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_ingest(files: list[str], store: Path, **kwargs: object) -> dict[str, float]:
    from volsurf.history.ingest import ingest

    t0 = time.perf_counter()
    res = ingest(files, str(store), progress=False, **kwargs)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    added = res.count("added")
    peaks = [o.peak_rss_mb for o in res.outcomes if o.peak_rss_mb is not None]
    cpu = [o.cpu_seconds for o in res.outcomes if o.cpu_seconds is not None]
    return {"added": added, "failed": res.count("failed"), "seconds": wall, "rate": added / wall,
            "workers": res.workers, "peak_mb": max(peaks) if peaks else float("nan"),
            "cpu_per_snapshot": float(np.mean(cpu)) if cpu else float("nan"), "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-small", type=int, default=100)
    ap.add_argument("--n-large", type=int, default=1000)
    ap.add_argument("--chain", type=Path, default=DEFAULT_CHAIN if DEFAULT_CHAIN.exists() else FALLBACK_CHAIN)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--n-dask", type=int, default=None, help="snapshots for the Dask runs (default --n-small)")
    ap.add_argument("--large-engine", choices=["local", "dask"], default="local")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from volsurf.history.sql import query
    from volsurf.history.stored import stored_series

    tmp = Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        t0 = time.perf_counter()
        files = make_chains(args.chain, tmp / "chains", max(args.n_small, args.n_large))
        contracts = len(pd.read_csv(files[0], comment="#"))
        print(f"chain: {args.chain.name} replayed {len(files)} times ({contracts} contracts each), "
              f"set-up {time.perf_counter() - t0:.0f} s; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} at start")
        small = files[: args.n_small]
        local = run_ingest(small, tmp / "local.store")
        print(f"local engine, default settings ({local['workers']} workers), N={len(small)}: "
              f"{local['rate']:.2f} snapshots/s ({local['seconds']:.1f} s, {local['failed']} failed, load average "
              f"{local['load']:.1f}), {local['cpu_per_snapshot']:.2f} CPU s per snapshot in the worker = "
              f"{2 / local['cpu_per_snapshot']:.2f}/s on 2 free cores; peak {local['peak_mb']:.0f} MB per worker"
              f"   [target >= 4/s]")
        if not args.skip_dask:
            dsmall = files[: args.n_dask or args.n_small]
            d1 = run_ingest(dsmall, tmp / "dask1.store", engine="dask", jobs=1)
            d2 = run_ingest(dsmall, tmp / "dask2.store", engine="dask", jobs=2)
            print(f"dask LocalCluster, N={len(dsmall)}: 1 worker {d1['rate']:.2f}/s ({d1['seconds']:.1f} s, load "
                  f"{d1['load']:.1f}), 2 workers {d2['rate']:.2f}/s ({d2['seconds']:.1f} s, load {d2['load']:.1f}): "
                  f"scaling {d2['rate'] / d1['rate']:.2f}x   [target >= 1.7x]; CPU s per snapshot {d1['cpu_per_snapshot']:.2f}"
                  f" / {d2['cpu_per_snapshot']:.2f}; peak {d2['peak_mb']:.0f} MB per worker")
        large_store = tmp / "large.store"
        if args.n_large <= 0:
            return
        engine = args.large_engine
        big = run_ingest(files[: args.n_large], large_store, engine=engine, jobs=2)
        small_peaks = f"{local['peak_mb']:.0f} MB local" + ("" if args.skip_dask else f", {d2['peak_mb']:.0f} MB dask")
        print(f"{engine}, 2 workers, N={args.n_large}: {big['rate']:.2f}/s ({big['seconds']:.0f} s), peak "
              f"{big['peak_mb']:.0f} MB per worker (N={len(small)}: {small_peaks})   [target < 1024 MB, flat in N]")
        size = _bytes(large_store)
        print(f"store: {size / 1e6:.1f} MB for {args.n_large} snapshots = {size / args.n_large / 1e6:.2f} MB per "
              f"snapshot (contracts {_bytes(large_store / 'contracts') / args.n_large / 1e6:.2f} MB)")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            res = stored_series(str(large_store))
            times.append(time.perf_counter() - t)
        cli_times = []
        for _ in range(3):  # a fresh process each time; the first also pays a cold page cache
            t = time.perf_counter()
            cli = subprocess.run([str(Path(sys.executable).parent / "volsurf"), "track", "--store", str(large_store),
                                  "--format", "csv", "-o", str(tmp / "track.csv")], capture_output=True, text=True)
            cli_times.append(time.perf_counter() - t)
        print(f"track --store over {len(res.series)} snapshots: {min(times):.3f} s (function, best of 3; first "
              f"{times[0]:.3f} s); CLI {cli_times[0]:.2f} s first, {min(cli_times):.2f} s best of 3, wall incl. "
              f"start-up (exit {cli.returncode})   [target < 1 s]")
        qt = []
        for _ in range(2):
            t = time.perf_counter()
            out = query(str(large_store), GROUP_SQL)
            qt.append(time.perf_counter() - t)
        print(f"query: all {int(out['contracts'].sum()):,} contracts grouped by expiry bucket: first {qt[0]:.2f} s, "
              f"second {qt[1]:.2f} s   [target < 2 s]")
        print(out.to_string(index=False))
        print(f"load average at end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
