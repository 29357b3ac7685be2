"""``summary.json``: the report's numbers as one JSON object, validated against ``schemas/summary.schema.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from volsurf import __version__
from volsurf._json import finite_or_none, to_jsonable
from volsurf.analytics.headline import HEADLINE_ORDER, headline_changes, snapshot_headline
from volsurf.analytics.headline import cm_dict as _cm

_num = finite_or_none


SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "summary.schema.json"


def build_summary(
    *,
    snapshot: Any,
    enriched: Any,
    surface_obj: dict[str, Any],
    metrics: Any,
    prev_metrics: Any,
    demand_chg: Any,
    history_count: int | None,
    flags: Sequence[Any],
    gex: Any,
    rebalance: Any,
    equity_ytd: float | None,
    bond_ytd: float | None,
    cta: Any = None,
    studies: Sequence[Any] = (),
) -> dict[str, Any]:
    """The ``summary.json`` object (documented in the README and the JSON schema)."""
    meta = snapshot.meta
    g = gex.to_dict()
    flip = _num(g.get("gamma_flip"))
    cm30 = _cm(metrics, 30)
    absent: dict[str, str] = {}
    vi = metrics.variance_index
    if not vi.get("available", vi.get("index") is not None):
        absent["variance_index_30d"] = vi.get("reason", "not available")
    si = metrics.skew_index
    if si.get("index") is None:
        absent["skew_index_30d"] = si.get("reason") or "not available"
    if _num(cm30.get("rr25")) is None:
        absent["rr25_30d"] = cm30.get("reason") or "no 30-day smile (the chain does not reach 30 days)"
    if prev_metrics is None:
        absent["changes"] = "no previous snapshot given (--previous FILE or --history PATHS)"
    if flip is None:
        absent["gamma_flip"] = g.get("gamma_flip_reason") or "no zero crossing of the GEX profile in range"
    if rebalance is None:
        absent["rebalance"] = "no year-to-date returns given (--equity-ytd and --bond-ytd)"
    if surface_obj.get("available") is False:
        # no quotes at all: every figure that needs our own IVs is absent for that one reason
        for key in ("surface", "atm_iv_30d", "variance_index_30d", "skew_index_30d", "rr25_30d"):
            absent[key] = str(surface_obj.get("reason"))
    if cta is None:
        absent["cta"] = "no daily price file for the trend-follower model (--cta-prices or --equity-prices)"
    # The figures' definitions live in volsurf.analytics.headline (the Parquet store keeps the same ones).
    parts = {
        **snapshot_headline(meta=meta, implied_spot=enriched.implied_spot, metrics=metrics, gex=g),
        **headline_changes(metrics, prev_metrics, demand_chg),
        "flags_triggered": [f.name for f in flags if f.triggered],
    }
    headline = {k: parts[k] for k in HEADLINE_ORDER}
    cal = metrics.calendar
    return to_jsonable(
        {
            "schema_version": 1,
            "generated_by": f"volsurf {__version__}",
            "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "snapshot": {
                **meta.to_dict(),
                "contracts": len(snapshot.frame),
                "expiries": int(snapshot.frame["expiry"].nunique()),
                "implied_spot": enriched.implied_spot,
                "warnings": list(meta.warnings) + list(enriched.warnings),
            },
            "calendar": cal,
            "headline": headline,
            "flags": [f.to_dict() for f in flags],
            "surface": surface_obj,
            "skew": {
                "constant_maturity": metrics.to_dict()["constant_maturity"],
                "variance_index": metrics.variance_index,
                "skew_index": metrics.skew_index,
                "delta_convention": "undiscounted forward delta N(d1), not premium-adjusted",
                "surface_source": metrics.surface_source,
                "previous": (
                    {"trade_date": prev_metrics.trade_date, "constant_maturity": prev_metrics.to_dict()["constant_maturity"]}
                    if prev_metrics is not None else None
                ),
                "history_snapshots": history_count,
            },
            "demand": {**metrics.demand.to_dict(), "change": demand_chg.to_dict() if demand_chg is not None else None},
            "gex": {k: v for k, v in g.items() if k not in ("profile_by_bucket",)},
            "rebalance": (
                {"equity_ytd": equity_ytd, "bond_ytd": bond_ytd, **rebalance.to_dict()} if rebalance is not None else None
            ),
            "cta": cta.to_dict() if cta is not None else None,
            "quarter_end_study": [s.summary_record() for s in studies] or None,
            "hygiene": {
                "flagged": dict(meta.hygiene),
                "iv_status": enriched.frame["iv_status"].value_counts().to_dict(),
                "rules": _hygiene_rules(),
            },
            "assumptions": {
                "dealer_positioning": g.get("assumption"),
                "dealer_positioning_description": g.get("assumption_description"),
                "vol_model_for_gex_profile": g.get("vol_model"),
                **enriched.assumptions,
            },
            "absent": absent,
        }
    )


def _hygiene_rules() -> dict[str, str]:
    from volsurf.market.snapshot import HYGIENE_RULES

    return {k: f"{a}: {d}" for k, (a, d) in HYGIENE_RULES.items()}


def validate_summary(summary: dict[str, Any]) -> None:
    """Validate ``summary`` against the checked-in JSON schema (raises ``jsonschema.ValidationError``)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(summary, schema)
