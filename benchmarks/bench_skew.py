"""Benchmark: ``volsurf skew`` on the largest real chain (SPX 2026-07-31 close, 14,456 rows x 2 contracts) must
finish in under 2 s, SKEW-method index included.

Run: ``.venv/bin/python benchmarks/bench_skew.py [FILE]``. Prints the best and median of several runs of
(a) the SKEW-method index alone (``skew_index_from_chain``, both term selections: pivot, parity rate, strip,
moments, sensitivity profile), and (b) the whole ``volsurf skew FILE --format json`` in-process (load, surface,
skew metrics, variance index, SKEW-method index, demand, JSON). Exits 1 if (b)'s best time is >= 2 s.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

from _timing import best_and_median as _time  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "real_chains" / "cboe_GallegoToscano_svi-volatility-surface" / "spx_quotedata_20260803.csv"
LIMIT_S = 2.0


def main(argv: list[str]) -> int:
    from volsurf.analytics.skew_index import skew_index_from_chain
    from volsurf.cli.main import main as cli_main
    from volsurf.io import load

    path = Path(argv[0]) if argv else DEFAULT
    if not path.exists():
        print(f"skip: {path} not found")
        return 0
    snap = load(path)
    roots = sorted(set(snap.frame["root"].astype(str)))
    for terms in ("vix", "monthly"):
        res = skew_index_from_chain(snap.frame, snap.meta.valuation_time, roots=roots, terms=terms)
        best, med = _time(
            lambda t=terms: skew_index_from_chain(snap.frame, snap.meta.valuation_time, roots=roots, terms=t), 7
        )
        print(
            f"skew_index_from_chain terms={terms:7s}: best {best * 1e3:6.1f} ms, median {med * 1e3:6.1f} ms "
            f"(SKEW {res.index:.2f}, sensitivity {res.sensitivity:+.2f})"
        )

    def run_cmd() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                cli_main(["skew", str(path), "--format", "json"])
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise RuntimeError(f"volsurf skew exited {exc.code}") from exc

    run_cmd()  # warm imports
    best, med = _time(run_cmd, 5)
    ok = best < LIMIT_S
    print(
        f"volsurf skew {path.name} --format json: best {best:.3f} s, median {med:.3f} s "
        f"(limit {LIMIT_S:g} s) {'OK' if ok else 'TOO SLOW'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
