"""Audit the surface of every real chain and bundled sample (the numbers in docs/surface.md and the notes).

    python scripts/audit_all.py [--markdown]

Prints, per file: expiries, butterfly / monotonicity / calendar violations on the default grid, the largest IV
jump between neighbouring grid points, the worst continuation error against the target wing (SVI or eSSVI)
beyond the approach lengths (overall, and where calendar order does not lift the wing), and the QP solver
statuses. Needs ../shared/real_chains beside the checkout for the real files.
"""

from __future__ import annotations

import collections
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "real_chains"


def main() -> None:
    from volsurf import enrich, fit_from_enriched, load
    from volsurf.errors import VolsurfError
    from volsurf.surface.audit import audit_surface

    warnings.simplefilter("ignore")
    files = sorted(SHARED.rglob("*.csv")) + sorted((ROOT / "sample_chains").glob("*.csv"))
    md = "--markdown" in sys.argv
    head = ["file", "expiries", "butterfly", "monotone", "calendar", "max IV jump (vol pts)",
            "worst continuation vs target (vol pts)", "same, not calendar-lifted", "solver statuses"]
    if md:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    for f in files:
        name = str(f.relative_to(SHARED)) if f.is_relative_to(SHARED) else f"sample_chains/{f.name}"
        try:
            surf = fit_from_enriched(enrich(load(f)))
        except VolsurfError as exc:
            print(f"| {name} | - | no surface: {exc.one_line()[:80]} |" if md else f"{name}: {exc.one_line()}")
            continue
        rep = audit_surface(surf)
        cont = rep.continuation
        worst = max((c.worst_error_vol_pts for c in cont), default=float("nan"))
        worst_free = max((c.worst_error_vol_pts for c in cont if not c.raised_by_calendar), default=float("nan"))
        status = ", ".join(f"{k} {v}" for k, v in collections.Counter(s for _, s in rep.solver_status).items())
        row = [name, str(len(surf.slices)), str(rep.butterfly.count), str(rep.monotonicity.count),
               str(rep.calendar.count), f"{rep.max_iv_jump_vol_pts:.2f}", f"{worst:.1f}", f"{worst_free:.1f}", status]
        print("| " + " | ".join(row) + " |" if md else "  ".join(row), flush=True)


if __name__ == "__main__":
    main()
