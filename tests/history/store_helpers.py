"""Helpers shared by the store tests: chain variants with distinct content and a store's tables as frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_chains"
SPY_FILES = [SAMPLES / "spy_2025-06-09_close.csv", SAMPLES / "spy_2025-08-29_close.csv"]

# Columns that depend on the run (none at present: the store keeps no timestamps of its own).
RUN_COLUMNS: tuple[str, ...] = ()


def cboe_variant(src: Path, dst: Path, k: int) -> Path:
    """A copy of Cboe file ``src`` whose last data row (the longest expiry) has its call volume raised by
    ``k + 1`` (new content)."""
    lines = src.read_text(encoding="utf-8").split("\n")
    row = max(i for i, ln in enumerate(lines) if ln.count(",") > 20)
    cells = lines[row].split(",")
    cells[6] = str(int(float(cells[6] or 0)) + k + 1)
    lines[row] = ",".join(cells)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(lines), encoding="utf-8")
    return dst


def with_date_line(src: Path, dst: Path, date_text: str) -> Path:
    """A copy of Cboe file ``src`` with its Date line written as ``date_text``."""
    lines = src.read_text(encoding="utf-8").split("\n")
    row = next(i for i, ln in enumerate(lines) if ln.startswith(('"Date:', "Date:")))
    rest = lines[row].split(",Bid:", 1)[1]
    lines[row] = f'"Date: {date_text}",Bid:{rest}'
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(lines), encoding="utf-8")
    return dst


def store_frames(url: str) -> dict[str, pd.DataFrame]:
    """Every table of a store as a DataFrame in a canonical row order (for comparing two stores)."""
    from volsurf.history.store import Store

    store = Store.open(url)
    out = {}
    keys = {"metrics": ["snapshot_id"], "surface_params": ["snapshot_id", "expiry", "root"],
            "contracts": ["snapshot_id", "contract"], "failures": ["source_file", "snapshot_index"]}
    for name, key in keys.items():
        tab = store.read_table(name)
        if tab is None:
            out[name] = pd.DataFrame()
            continue
        df = tab.to_pandas()
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype(str)
        df = df.drop(columns=[c for c in RUN_COLUMNS if c in df.columns])
        out[name] = df.sort_values(key, kind="stable").reset_index(drop=True)
    return out


def assert_same_store(a: str, b: str) -> None:
    """Two stores hold the same rows (every table, every column, exact values)."""
    fa, fb = store_frames(a), store_frames(b)
    for name in fa:
        left, right = fa[name], fb[name]
        assert len(left) == len(right), f"{name}: {len(left)} rows vs {len(right)}"
        if len(left) == 0:
            continue
        assert list(left.columns) == list(right.columns), name
        # nested columns (lists of structs) compare as their Python values
        for c in left.columns:
            if left[c].dtype == object:
                lv = [v.tolist() if hasattr(v, "tolist") else v for v in left[c]]
                rv = [v.tolist() if hasattr(v, "tolist") else v for v in right[c]]
                assert lv == rv, f"{name}.{c}"
        flat = [c for c in left.columns if left[c].dtype != object]
        pd.testing.assert_frame_equal(left[flat], right[flat], check_exact=True, obj=name)
