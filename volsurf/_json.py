"""JSON-safe values: the one conversion every JSON output goes through (NaN and inf become ``null``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any


def finite_or_none(x: Any) -> float | None:
    """``float(x)`` when it is a finite number, else ``None`` (strings, ``None``, NaN and inf)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def to_jsonable(obj: Any) -> Any:
    """Convert numpy / pandas / dataclass values to plain JSON types; NaN and inf become ``None``."""
    t = type(obj)  # fast path for the plain values most records hold
    if t is float:
        return obj if math.isfinite(obj) else None
    if t is str or t is int or obj is None:
        return obj
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
