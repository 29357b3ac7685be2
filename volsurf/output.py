"""Rendering results as table, JSON or CSV (the CLI's ``--format``), and JSON-safe conversion."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FORMATS = ("table", "json", "csv")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy / pandas / dataclass values to plain JSON types; NaN and inf become ``None``."""
    import numpy as np

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    return str(obj)


def dumps_json(obj: Any) -> str:
    """Indented JSON text of ``obj`` after :func:`to_jsonable`."""
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False)


def _fmt_cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        if abs(v) >= 1e7 or abs(v) < 1e-3:
            return f"{v:.4g}"
        return f"{v:,.2f}" if abs(v) >= 1e3 else f"{v:.4f}"
    return str(v)


def records_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Plain-text aligned table of a list of flat dicts."""
    records = [to_jsonable(r) for r in records]
    if not records:
        return "(no rows)"
    cols = list(columns) if columns else list(records[0].keys())
    cells = [[_fmt_cell(r.get(c)) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def key_values_table(obj: Mapping[str, Any]) -> str:
    """Two-column ``key  value`` text for a flat dict (nested values as compact JSON)."""
    obj = to_jsonable(obj)
    width = max((len(k) for k in obj), default=0)
    out = []
    for k, v in obj.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        out.append(f"{k.ljust(width)}  {_fmt_cell(v)}")
    return "\n".join(out)


def records_csv(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text of a list of flat dicts."""
    import csv

    records = [to_jsonable(r) for r in records]
    buf = io.StringIO()
    if not records:
        return ""
    cols = list(columns) if columns else list(records[0].keys())
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def write_text(text: str, output: str | Path | None) -> None:
    """Write ``text`` to ``output`` (a path) or to stdout when ``output`` is None or ``-``."""
    import click

    if output is None or str(output) == "-":
        click.echo(text)
    else:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
