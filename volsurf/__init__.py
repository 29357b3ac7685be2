"""volsurf: options volatility surface analyzer.

The public API is imported lazily so that ``import volsurf`` (and the CLI's ``--help``) stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "load": "volsurf.io.formats",
    "load_many": "volsurf.io.formats",
    "Snapshot": "volsurf.market.snapshot",
    "SnapshotMeta": "volsurf.market.snapshot",
    "implied_volatility": "volsurf.pricing.iv",
    "black76_price": "volsurf.pricing.black76",
    "VolsurfError": "volsurf.errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'volsurf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
