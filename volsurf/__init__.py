"""volsurf: options volatility surface analyzer.

The public API: everything a notebook user needs, importable from ``volsurf`` directly::

    import volsurf

    snap = volsurf.load("sample_chains/spx_2026-07-31_close.csv")
    enriched = volsurf.enrich(snap)                 # forwards, IVs, greeks per contract
    surface = volsurf.fit_from_enriched(enriched)   # arbitrage-free surface; surface.iv(strike, t)
    metrics = volsurf.snapshot_metrics(snap, enriched=enriched, fitted_surface=surface)
    gex = volsurf.gex_report(enriched)

Names are imported lazily (``import volsurf`` and the CLI's ``--help`` stay fast); type checkers and IDEs see
them through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # loading chains
    "load": "volsurf.io",
    "load_all": "volsurf.io",
    "load_many": "volsurf.io",
    "expand_paths": "volsurf.io",
    "write_canonical": "volsurf.io",
    "Snapshot": "volsurf.market.snapshot",
    "SnapshotMeta": "volsurf.market.snapshot",
    "calendar_context": "volsurf.market.calendar",
    # pricing
    "black76_price": "volsurf.pricing.black76",
    "implied_volatility": "volsurf.pricing.iv",
    "enrich": "volsurf.pricing.enrich",
    "EnrichedSnapshot": "volsurf.pricing.enrich",
    # surface
    "fit_surface": "volsurf.surface.fit",
    "fit_from_enriched": "volsurf.surface.summary",
    "Surface": "volsurf.surface.query",
    # analytics
    "snapshot_metrics": "volsurf.analytics.measure",
    "SnapshotMetrics": "volsurf.analytics.measure",
    "otm_put_demand": "volsurf.analytics.demand",
    "variance_index_from_chain": "volsurf.analytics.variance_index",
    "skew_index_from_chain": "volsurf.analytics.skew_index",
    "gex_report": "volsurf.analytics.gex_report",
    "GexReport": "volsurf.analytics.gex_report",
    # flows and signals
    "rebalance_flow": "volsurf.flows.rebalance",
    "evaluate_flags": "volsurf.signals.flags",
    "FlagThresholds": "volsurf.signals.flags",
    # history and the main job
    "track": "volsurf.history.track",
    "analyze": "volsurf.report.pipeline",
    "flags_for_file": "volsurf.report.pipeline",
    "write_report": "volsurf.report.html",
    # errors and warnings
    "VolsurfError": "volsurf.errors",
    "VolsurfWarning": "volsurf.errors",
}

__all__ = [
    "EnrichedSnapshot",
    "FlagThresholds",
    "GexReport",
    "Snapshot",
    "SnapshotMeta",
    "SnapshotMetrics",
    "Surface",
    "VolsurfError",
    "VolsurfWarning",
    "__version__",
    "analyze",
    "black76_price",
    "calendar_context",
    "enrich",
    "evaluate_flags",
    "expand_paths",
    "fit_from_enriched",
    "fit_surface",
    "flags_for_file",
    "gex_report",
    "implied_volatility",
    "load",
    "load_all",
    "load_many",
    "otm_put_demand",
    "rebalance_flow",
    "skew_index_from_chain",
    "snapshot_metrics",
    "track",
    "variance_index_from_chain",
    "write_canonical",
    "write_report",
]

if TYPE_CHECKING:
    from volsurf.analytics.demand import otm_put_demand
    from volsurf.analytics.gex_report import GexReport, gex_report
    from volsurf.analytics.measure import SnapshotMetrics, snapshot_metrics
    from volsurf.analytics.skew_index import skew_index_from_chain
    from volsurf.analytics.variance_index import variance_index_from_chain
    from volsurf.errors import VolsurfError, VolsurfWarning
    from volsurf.flows.rebalance import rebalance_flow
    from volsurf.history.track import track
    from volsurf.io import expand_paths, load, load_all, load_many, write_canonical
    from volsurf.market.calendar import calendar_context
    from volsurf.market.snapshot import Snapshot, SnapshotMeta
    from volsurf.pricing.black76 import black76_price
    from volsurf.pricing.enrich import EnrichedSnapshot, enrich
    from volsurf.pricing.iv import implied_volatility
    from volsurf.report.html import write_report
    from volsurf.report.pipeline import analyze, flags_for_file
    from volsurf.signals.flags import FlagThresholds, evaluate_flags
    from volsurf.surface.fit import fit_surface
    from volsurf.surface.query import Surface
    from volsurf.surface.summary import fit_from_enriched


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'volsurf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return list(__all__)
