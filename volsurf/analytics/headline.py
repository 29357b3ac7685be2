"""The headline numbers of one snapshot: the definitions ``volsurf report`` shows and the Parquet store keeps.

:func:`snapshot_headline` holds the figures that depend on the snapshot alone (gamma regime, flip, walls, ATM
IV, variance index, risk reversal, put skew, OTM put demand); :func:`headline_changes` the ones that compare it
with a previous snapshot. :func:`volsurf.report.summary.build_summary` and the store
(:mod:`volsurf.history.ingest`) both call them, so a stored headline is the report's headline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from volsurf._json import finite_or_none

_num = finite_or_none

#: Key order of the report's ``headline`` object (snapshot figures, changes and triggered flags).
HEADLINE_ORDER: tuple[str, ...] = (
    "underlying",
    "trade_date",
    "spot",
    "implied_spot",
    "net_gex",
    "regime",
    "regime_robust",
    "gamma_flip",
    "gamma_flip_distance_pct",
    "gamma_flip_range",
    "call_wall",
    "put_wall",
    "atm_iv_30d",
    "variance_index_30d",
    "skew_index_30d",
    "rr25_30d",
    "rr25_30d_change",
    "put_skew_90_100_30d",
    "otm_put_oi_share",
    "otm_put_oi_share_change",
    "otm_put_volume_share",
    "put_call_oi_ratio",
    "flags_triggered",
)


def change(cur: Any, prev: Any) -> float | None:
    """``cur - prev`` when both are finite numbers, else None."""
    a, b = _num(cur), _num(prev)
    return None if a is None or b is None else a - b


def cm_dict(metrics: Any, days: int) -> dict[str, Any]:
    """The constant-maturity metrics of ``metrics`` at ``days`` as a dict (empty when not computed)."""
    m = metrics.cm(days)
    return m.to_dict() if m is not None else {}


def snapshot_headline(*, meta: Any, implied_spot: float, metrics: Any, gex: Mapping[str, Any]) -> dict[str, Any]:
    """The headline figures of one snapshot that need no other snapshot.

    Parameters
    ----------
    meta : SnapshotMeta
        The snapshot's metadata (underlying, trade date, spot).
    implied_spot : float
        Spot implied by put-call parity (:attr:`EnrichedSnapshot.implied_spot`).
    metrics : SnapshotMetrics
        :func:`volsurf.analytics.measure.snapshot_metrics` of the snapshot.
    gex : mapping
        :meth:`volsurf.analytics.gex_report.GexReport.to_dict` of the snapshot.

    Returns
    -------
    dict
        The keys of :data:`HEADLINE_ORDER` except the changes and ``flags_triggered``; numbers are floats or
        None (never NaN).
    """
    spot = meta.spot
    flip = _num(gex.get("gamma_flip"))
    net = _num(gex.get("net_gex"))
    cm30 = cm_dict(metrics, 30)
    demand = metrics.demand
    return {
        "underlying": meta.underlying,
        "trade_date": meta.trade_date.isoformat(),
        "spot": spot,
        "implied_spot": implied_spot,
        "net_gex": net,
        "regime": None if net is None else ("positive_gamma" if net > 0 else "negative_gamma"),
        "regime_robust": gex.get("regime_robust"),
        "gamma_flip": flip,
        # from the spot the GEX profile is centred on (the parity-implied spot when the file's Last is stale)
        "gamma_flip_distance_pct": None if flip is None else (flip / (_num(gex.get("spot")) or spot) - 1) * 100,
        "gamma_flip_range": gex.get("gamma_flip_range"),
        "call_wall": gex.get("call_wall"),
        "put_wall": gex.get("put_wall"),
        "atm_iv_30d": _num(cm30.get("atm_iv")),
        "variance_index_30d": _num(metrics.variance_index_30d),
        "skew_index_30d": _num(metrics.skew_index_30d),
        "rr25_30d": _num(cm30.get("rr25")),
        "put_skew_90_100_30d": _num(cm30.get("put_skew_90_100")),
        "otm_put_oi_share": _num(demand.otm_put_oi_share),
        "otm_put_volume_share": _num(demand.otm_put_volume_share),
        "put_call_oi_ratio": _num(demand.put_call_oi_ratio),
    }


def headline_changes(metrics: Any, prev_metrics: Any, demand_chg: Any) -> dict[str, float | None]:
    """``rr25_30d_change`` against ``prev_metrics`` and ``otm_put_oi_share_change`` (like-for-like) from
    ``demand_chg`` (None where there is nothing to compare with)."""
    cm30 = cm_dict(metrics, 30)
    prev30 = cm_dict(prev_metrics, 30) if prev_metrics is not None else {}
    return {
        "rr25_30d_change": change(cm30.get("rr25"), prev30.get("rr25")) if prev30 else None,
        "otm_put_oi_share_change": (
            _num(demand_chg.like_for_like.get("otm_put_oi_share")) if demand_chg is not None else None
        ),
    }


__all__ = ["HEADLINE_ORDER", "change", "cm_dict", "headline_changes", "snapshot_headline"]
