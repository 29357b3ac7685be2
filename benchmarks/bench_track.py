"""Benchmark: ``volsurf track`` over N snapshots of a ~10,000-row chain (target: 250 snapshots in < 60 s).

Writes N synthetic canonical CSV chains (consecutive NYSE sessions, 50 expiries x 100 strikes x call/put,
Black-76 prices from a skewed smile) into a temporary directory, then times :func:`volsurf.history.track.track` over
them (load + enrich + smile + skew + variance index + demand + calendar per file).

Run: ``.venv/bin/python benchmarks/bench_track.py [--n 250] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from volsurf.io import write_canonical
from volsurf.market.calendar import session_open_close, sessions_between
from volsurf.market.snapshot import Snapshot, SnapshotMeta
from volsurf.pricing.black76 import black76_price

NY = "America/New_York"


def synthetic_chain(day, spot: float, skew: float, n_expiries: int = 50, n_strikes: int = 100) -> Snapshot:
    """~``2 * n_expiries * n_strikes`` rows priced from iv(k) = 0.18 + skew k (weekly expiries, PM-settled)."""
    _, close = session_open_close(day)
    rows = []
    for i in range(n_expiries):
        exp = (pd.Timestamp(day) + pd.Timedelta(days=1 + 7 * i)).tz_localize(NY) + pd.Timedelta(hours=16)
        t = (exp - close).total_seconds() / 60 / 525_600
        fwd = spot * math.exp(0.04 * t)
        disc = math.exp(-0.04 * t)
        strikes = np.round(fwd * np.exp(np.linspace(-5, 3, n_strikes) * 0.18 * math.sqrt(t)), 1)
        k = np.log(strikes / fwd)
        iv = np.maximum(0.18 + skew * k, 0.05)
        for kind in ("call", "put"):
            px = black76_price(fwd, strikes, t, iv, kind == "call", disc)
            rows.append(pd.DataFrame({
                "expiry": exp, "expiry_date": exp.date().isoformat(), "strike": strikes, "type": kind,
                "bid": np.round(np.maximum(px - 0.1, 0.0), 2), "ask": np.round(px + 0.1, 2), "last": px,
                "volume": 25.0, "open_interest": 500.0 if kind == "call" else 900.0,
            }))
    f = pd.concat(rows, ignore_index=True)
    f["root"] = "SPXW"
    f["settlement"] = "PM"
    f["contract"] = [f"SPXW{e[2:4]}{e[5:7]}{e[8:10]}{'C' if ty == 'call' else 'P'}{round(s * 1000):08d}"
                     for e, ty, s in zip(f["expiry_date"], f["type"], f["strike"], strict=True)]
    for c in ("vendor_iv", "vendor_delta", "vendor_gamma"):
        f[c] = np.nan
    f["flags"] = ""
    f = f.drop_duplicates("contract").reset_index(drop=True)
    meta = SnapshotMeta(underlying="SPX", spot=spot, quote_time=close, trade_date=day, valuation_time=close,
                        source_format="synthetic", source_file=f"bench_{day}")
    return Snapshot(frame=f, meta=meta)


def make_files(directory: Path, n: int) -> list[str]:
    days = sessions_between("2023-01-03", "2024-12-31")[:n]
    rng = np.random.default_rng(0)
    paths = []
    base = synthetic_chain(days[0], 4000.0, -0.3)
    # Parts of the contract id that do not change with the date (computed once: set-up time adds up over 250).
    suffix = (np.where(base.frame["type"] == "call", "C", "P").astype(object)
              + (base.frame["strike"] * 1000).round().astype(int).astype(str).str.zfill(8).to_numpy(dtype=object))
    exp_codes, base_expiries = pd.factorize(base.frame["expiry"])
    for i, day in enumerate(days):
        # Re-date one priced chain (pricing 250 chains would dominate the set-up time): shift expiries so
        # that the first is always the next day, keep the frame's size.
        snap = synthetic_chain(day, 4000.0 + 10 * i, -0.3 + 0.05 * rng.standard_normal()) if i < 3 else None
        if snap is None:
            shift = pd.Timestamp(day) - pd.Timestamp(days[0])
            f = base.frame.copy()
            expiries = base_expiries + shift  # 50 distinct expiries: format those, then broadcast
            f["expiry"] = expiries.take(exp_codes)
            f["expiry_date"] = np.asarray(expiries.strftime("%Y-%m-%d"), dtype=object)[exp_codes]
            f["contract"] = "SPXW" + np.asarray(expiries.strftime("%y%m%d"), dtype=object)[exp_codes] + suffix
            _, close = session_open_close(day)
            meta = SnapshotMeta(underlying="SPX", spot=4000.0, quote_time=close, trade_date=day,
                                valuation_time=close, source_format="synthetic", source_file=f"bench_{day}")
            snap = Snapshot(frame=f, meta=meta)
        p = directory / f"spx_{day}.csv"
        write_canonical(snap, p)
        paths.append(str(p))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=250, help="snapshots")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    args = ap.parse_args()
    from volsurf.history.track import track

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = make_files(Path(tmp), args.n)
        rows = len(pd.read_csv(paths[0], comment="#"))
        t1 = time.perf_counter()
        res = track([tmp], jobs=args.jobs, progress=False)
        t2 = time.perf_counter()
    print(f"set-up: {args.n} files of {rows} rows in {t1 - t0:.1f} s")
    print(f"track: {len(res.series)} snapshots in {t2 - t1:.1f} s ({(t2 - t1) / args.n * 1000:.0f} ms per snapshot, "
          f"jobs={args.jobs}); target < 60 s for 250")
    print(f"skipped: {len(res.skipped)}; rr25_30d median {np.nanmedian(res.series['rr25_30d']):.4f}")


if __name__ == "__main__":
    main()
