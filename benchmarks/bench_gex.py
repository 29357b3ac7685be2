"""Benchmark: the net GEX profile of the largest real chain (SPX 2026-07-31 close, 14,456 rows x 2 contracts)
on 400 spot points must compute in under 1 s.

Run: ``.venv/bin/python benchmarks/bench_gex.py [FILE]``. Prints the best and median of several runs of
(a) the profile alone (ProfileModel build + 400-point evaluation), (b) the flip (grid + Brent refinement) and
(c) the whole ``gex_report`` with robustness scenarios. Exits 1 if the profile's best time is >= 1 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from _timing import best_and_median as _time  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "real_chains" / "cboe_GallegoToscano_svi-volatility-surface" / "spx_quotedata_20260803.csv"
LIMIT_S = 1.0


def main(argv: list[str]) -> int:
    from volsurf.analytics import gex, gex_report
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich

    path = Path(argv[0]) if argv else DEFAULT
    if not path.exists():
        print(f"skip: {path} not found")
        return 0
    enriched = enrich(load(str(path)))
    f = enriched.frame
    spot = float(enriched.meta.spot)
    is_call = (f["type"] == "call").to_numpy()
    oi = np.nan_to_num(f["open_interest"].to_numpy(float))
    sigma, _ = gex_report.fill_from_pair(f, f["iv_mid"].to_numpy(float))
    weights = gex.get_assumption(gex.DEFAULT_ASSUMPTION).signs(is_call) * oi * 100.0
    fwd, k, t, disc = (f[c].to_numpy(float) for c in ("forward", "strike", "t", "discount"))
    grid = gex.spot_grid(spot, 0.15, 400)

    def profile():
        return gex.ProfileModel.build(spot, fwd, k, t, sigma, disc, weights).evaluate(grid)

    def flip():
        model = gex.ProfileModel.build(spot, fwd, k, t, sigma, disc, weights)
        return gex.find_gamma_flip(model.value, grid, model.evaluate(grid), spot)

    model = gex.ProfileModel.build(spot, fwd, k, t, sigma, disc, weights)
    print(f"file: {path.name}: {len(f):,} contracts, {model.a.size:,} with open interest and IV, "
          f"{grid.size} spot points = {grid.size * model.a.size:,} gamma evaluations")
    best, med = _time(profile, 7)
    print(f"profile (400 points)       best {best:.3f} s  median {med:.3f} s  (limit {LIMIT_S:.1f} s)")
    fb, fm = _time(flip, 5)
    print(f"profile + flip (brentq)    best {fb:.3f} s  median {fm:.3f} s  -> flip {flip().flip:,.2f}")
    rb, rm = _time(lambda: gex_report.gex_report(enriched, n_points=400), 3)
    print(f"gex_report with robustness best {rb:.3f} s  median {rm:.3f} s")
    if best >= LIMIT_S:
        print("FAIL: profile slower than the limit")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
