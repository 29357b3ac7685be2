"""Benchmark: ``volsurf surface FILE --grid OUT.csv`` on the largest real chain (SPX, 60 expiries).

Run: ``.venv/bin/python benchmarks/bench_surface_grid.py [path]``. Prints, best of a few runs:

- the grid export of a fitted surface: building the query curves (market regions, wings, calendar order), sampling
  the default grid through the public API (every quoted strike, 0.25 of continuation on both sides, step 0.002;
  the listed expiries and a time halfway between each pair) and writing the CSV -- the target is under 2 s;
- the audit on the same grid (the counts are computed from the sampled values);
- the whole command (load, enrich, fit, grid, CSV) in a fresh process, for reference.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT.parent / "shared" / "real_chains" / "cboe_GallegoToscano_svi-volatility-surface" / "spx_quotedata_20260803.csv"


def main(path: str | None = None, repeats: int = 3) -> dict[str, float]:
    import warnings

    from volsurf.io import load
    from volsurf.pricing.enrich import enrich
    from volsurf.surface.audit import audit_grid, surface_grid
    from volsurf.surface.fit import expiry_quotes_from_enriched, fit_surface

    path = str(path or DEFAULT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quotes = expiry_quotes_from_enriched(enrich(load(path)))
    best = {"grid_export": float("inf"), "audit": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid.csv"
        for _ in range(repeats):
            surf = fit_surface(quotes)  # fresh surface: no query cache
            t0 = time.perf_counter()
            grid = surface_grid(surf)
            n = grid.write_csv(str(out))
            t1 = time.perf_counter()
            audit_grid(grid, surface=surf)
            t2 = time.perf_counter()
            best["grid_export"] = min(best["grid_export"], t1 - t0)
            best["audit"] = min(best["audit"], t2 - t1)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "volsurf.cli.main", "surface", path, "--grid", str(out)],
                       check=True, capture_output=True, cwd=ROOT)
        best["command"] = time.perf_counter() - t0
    print(f"file: {path}")
    print(f"grid: {n} rows ({grid.t.size} times x {grid.x.size} log-moneyness points), {out.name}")
    print(f"grid export of a fitted surface (curves + sampling + CSV), best of {repeats}: {best['grid_export']:.3f} s")
    print(f"audit on that grid: {best['audit']:.3f} s")
    print(f"whole command in a fresh process (imports, load, enrich, fit, grid, CSV): {best['command']:.2f} s")
    return best


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
