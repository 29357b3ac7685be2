"""volsurf: options volatility surface analyzer.

The public API is imported lazily so that ``import volsurf`` (and the CLI's ``--help``) stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "load": "volsurf.formats",
    "load_many": "volsurf.formats",
    "Snapshot": "volsurf.snapshot",
    "SnapshotMeta": "volsurf.snapshot",
    "implied_volatility": "volsurf.iv",
    "black76_price": "volsurf.pricing",
    "VolsurfError": "volsurf.errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'volsurf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
