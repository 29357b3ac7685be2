"""Benchmark: the CTA model on the shared SPY history (7,858 sessions).

Run: ``.venv/bin/python benchmarks/bench_cta.py [FILE]``. Prints the best and median of several runs of
(a) ``cta_positioning`` on the last date (state, triggers, 5 scenarios), (b) ``cta_history`` + ``pnl_by_year``
over the whole history and (c) ``index_divergence`` of SPY against the NASDAQ-100. Exits 1 if (a) takes >= 0.5 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _timing import best_and_median as _time  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
SERIES = ROOT.parent / "shared" / "real_series"
DEFAULT = SERIES / "spy_daily_1993_2024.csv"
NDX = SERIES / "ndx_vix_rates_daily_2000_2026.csv"
LIMIT_S = 0.5


def main(argv: list[str]) -> int:
    from volsurf.flows.cta import cta_history, cta_positioning, load_prices, pnl_by_year
    from volsurf.flows.divergence import divergence_frequency, index_divergence

    path = Path(argv[0]) if argv else DEFAULT
    if not path.exists():
        print(f"skip: {path} not found")
        return 0
    px = load_prices(path, "adjusted_close" if path == DEFAULT else None)
    cta_positioning(px)  # warm the calendar
    best, med = _time(lambda: cta_positioning(px), 5)
    print(
        f"cta_positioning (last date, {len(px)} prices): best {best * 1e3:.1f} ms, median {med * 1e3:.1f} ms"
    )
    b2, m2 = _time(lambda: pnl_by_year(cta_history(px)), 5)
    print(f"cta_history + pnl_by_year: best {b2 * 1e3:.1f} ms, median {m2 * 1e3:.1f} ms")
    if NDX.exists() and path == DEFAULT:
        spy, ndx = load_prices(path, "close"), load_prices(NDX, "NDX_close")
        b3, m3 = _time(lambda: divergence_frequency(index_divergence(spy, ndx)), 5)
        print(f"index_divergence + frequency: best {b3 * 1e3:.1f} ms, median {m3 * 1e3:.1f} ms")
    return 1 if best >= LIMIT_S else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
