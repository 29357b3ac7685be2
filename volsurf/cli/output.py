"""Rendering results as table, JSON or CSV (the CLI's ``--format``)."""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from volsurf._json import dumps_json, to_jsonable

__all__ = ["FORMATS", "dumps_json", "key_values_table", "records_csv", "records_table", "strip_control", "to_jsonable",
           "write_text"]

FORMATS = ("table", "json", "csv")


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
    """CSV text of a list of flat dicts (values through :func:`to_jsonable`; missing and null values empty)."""
    import csv

    if not records:
        return ""
    buf = io.StringIO()
    cols = list(columns) if columns else [str(k) for k in records[0]]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for rec in records:
        r = rec if all(type(k) is str for k in rec) else {str(k): v for k, v in rec.items()}
        w.writerow([_csv_cell(r.get(c)) for c in cols])
    return buf.getvalue()


def _csv_cell(v: Any) -> Any:
    """A CSV cell: :func:`to_jsonable` of ``v``, empty for null (finite floats, text and ints pass straight)."""
    t = type(v)
    if t is float:
        return v if v - v == 0.0 else ""  # NaN and +-inf give NaN here
    if t is str or t is int or t is bool:
        return v
    j = to_jsonable(v)
    return "" if j is None else j


#: Control characters a terminal would act on (escape sequences, carriage returns, bells): never printed from
#: file content. Newlines and tabs are layout and stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_control(text: str) -> str:
    """``text`` with every control character except newline and tab replaced by ``?``."""
    return _CONTROL.sub("?", text)


def write_text(text: str, output: str | Path | None) -> None:
    """Write ``text`` to ``output`` (a path) or to stdout when ``output`` is None or ``-``.

    Control characters from file content are replaced (:func:`strip_control`). A file is written whole or not
    at all: to a temporary file in its folder, then renamed onto ``output``; a folder that cannot be made or
    written is a one-line error.
    """
    import click

    from volsurf._paths import write_atomic

    text = strip_control(text)
    if output is None or str(output) == "-":
        click.echo(text)
    else:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
