"""Write (or compare) the report summary of every real chain with 5+ expiries and the demo chain.

Used to show that a refactor leaves ``summary.json`` numerically identical::

    python scripts/summary_regression.py write BEFORE_DIR      # on the old code
    python scripts/summary_regression.py write AFTER_DIR       # on the new code
    python scripts/summary_regression.py compare BEFORE_DIR AFTER_DIR

``generated_at``, ``generated_by``, ``timings`` and ``source_file`` are ignored; every other value must match exactly (floats to 1e-12 relative).
Needs ``../shared/real_chains`` beside the checkout.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "real_chains"
# Run-dependent fields: wall-clock timings, the absolute path of the input (the checkout's location).
IGNORED = {"generated_at", "generated_by", "timings", "source_file"}


def chain_files() -> list[Path]:
    files = sorted(p for p in SHARED.rglob("*") if p.suffix.lower() in (".csv", ".json") and p.is_file())
    return [ROOT / "sample_chains" / "spx_2026-07-31_close.csv", *files]


def _analyze(path: str):
    try:
        from volsurf.report.pipeline import analyze  # after the layer split
    except ImportError:
        from volsurf.report import analyze  # type: ignore[attr-defined,no-redef]
    return analyze(path)


def write(out_dir: Path) -> None:
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    for path in chain_files():
        try:
            from volsurf import load

            snap = load(str(path))
            if pd.Series(snap.frame["expiry"]).nunique() < 5:
                continue
            summary = _analyze(str(path)).summary
        except Exception as exc:
            summary = {"error": f"{type(exc).__name__}: {exc}"}
        if path.is_relative_to(SHARED):
            name = "shared__real_chains__" + str(path.relative_to(SHARED)).replace("/", "__")
        else:
            name = "main__sample_chains__" + path.name
        (out_dir / f"{name}.json").write_text(json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8")
        print(name, flush=True)


ADDED: list[str] = []


def _diff(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in IGNORED:
                continue
            if k not in a and k in b:
                ADDED.append(f"{where.split('.json', 1)[-1]}.{k}")  # a new field (later issues add some)
            elif k not in b:
                out.append(f"{where}.{k}: only in before")
            else:
                _diff(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: length {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{where}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float):
        if not (a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-14)):
            out.append(f"{where}: {a!r} vs {b!r}")
    elif a != b:
        out.append(f"{where}: {a!r} vs {b!r}")


def compare(before: Path, after: Path) -> int:
    diffs: list[str] = []
    names = sorted(p.name for p in before.glob("*.json"))
    for name in names:
        a = json.loads((before / name).read_text(encoding="utf-8"))
        other = after / name
        if not other.exists():
            diffs.append(f"{name}: missing after")
            continue
        _diff(a, json.loads(other.read_text(encoding="utf-8")), name, diffs)
    print(f"{len(names)} summaries compared, {len(diffs)} differences")
    added = sorted(set(ADDED))
    print(f"fields only in after (new, not changed): {len(added)}: {', '.join(added[:30])}")
    for d in diffs[:200]:
        print("  " + d)
    return 1 if diffs else 0


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(Path(sys.argv[2]))
    else:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
