"""The surface fit as a report: one JSON-ready object per chain (used by ``volsurf surface`` and ``volsurf report``).

:func:`fit_from_enriched` runs the fit on an :class:`~volsurf.pricing.enrich.EnrichedSnapshot`; :func:`surface_summary`
turns the resulting :class:`~volsurf.surface.fit.Surface` into plain data (no numpy, no per-quote arrays): per
expiry the SVI and eSSVI parameters and the fit diagnostics of the three layers, the skipped expiries with their
reasons, the medians over expiries of 7 days or more and the timings.

Units: ``t`` in years, ``days`` calendar days (``365 t``), vols decimal (0.15 = 15 vol points), RMSE in vol
points, shares in ``[0, 1]``, ``quoted_k_range`` in log-moneyness ``ln(K/F)``.
"""

from __future__ import annotations

import math
from typing import Any

from volsurf._json import finite_or_none
from volsurf.surface.fit import SEVEN_DAYS

# Per-expiry columns of the table and CSV views (the JSON holds more).
TABLE_COLUMNS = [
    "expiry",
    "root",
    "days",
    "forward",
    "atm_iv_fit",
    "rmse_vol_points",
    "inside_band_share",
    "svi_rmse_vol_points",
    "svi_inside_band_share",
    "butterfly_violations",
    "calendar_violations",
    "raw_butterfly_violations",
    "raw_calendar_violations",
]
CSV_COLUMNS = [
    "expiry",
    "root",
    "settlement",
    "t",
    "days",
    "forward",
    "discount",
    "atm_iv_fit",
    "svi_atm_iv",
    "n_liquid",
    "rmse_vol_points",
    "inside_band_share",
    "svi_rmse_vol_points",
    "svi_inside_band_share",
    "essvi_rmse_vol_points",
    "essvi_inside_band_share",
    "butterfly_violations",
    "calendar_violations",
    "svi_butterfly_violations",
    "raw_butterfly_violations",
    "raw_calendar_violations",
    "arb_inconsistent_quotes",
    "svi_a",
    "svi_b",
    "svi_rho",
    "svi_m",
    "svi_sigma",
    "svi_flags",
    "essvi_theta",
    "essvi_rho",
    "essvi_psi",
]


def fit_from_enriched(enriched: Any, *, min_days: float = 0.0, **fit_kwargs: Any) -> Any:
    """Fit the surface of an enriched chain.

    Parameters
    ----------
    enriched : EnrichedSnapshot
        Output of :func:`volsurf.pricing.enrich.enrich`.
    min_days : float
        Expiries with at most this many calendar days to expiry are left out (0: every unexpired one).
    **fit_kwargs
        Passed to :func:`volsurf.surface.fit.fit_surface` (``min_quotes``, ``max_quotes``, ``roughness``...).

    Returns
    -------
    Surface

    Raises
    ------
    DataError
        No expiry has enough liquid quotes.
    """
    from volsurf.surface.fit import expiry_quotes_from_enriched, fit_surface

    return fit_surface(expiry_quotes_from_enriched(enriched, min_t=float(min_days) / 365.0), **fit_kwargs)


_num = finite_or_none


def _iso(x: Any) -> str | None:
    """Date/time as ISO text (the report is plain JSON data)."""
    return None if x is None else x.isoformat() if hasattr(x, "isoformat") else str(x)


def _split_label(label: str) -> tuple[str, str]:
    """``"2026-09-18 SPX"`` -> ``("2026-09-18", "SPX")`` (the label format of ``expiry_quotes_from_enriched``)."""
    parts = str(label).split()
    if len(parts) >= 2:
        return parts[0], " ".join(parts[1:])
    return str(label), ""


def _expiry_facts(enriched: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(expiry date, root) -> settlement / rate / dividend yield from the enrichment's per-expiry table."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    ex = getattr(enriched, "expiries", None)
    if ex is None or not len(ex):
        return out
    for row in ex.to_dict("records"):
        key = (str(row.get("expiry_date")), str(row.get("root")))
        out[key] = {
            "settlement": row.get("settlement"),
            "rate": _num(row.get("rate")),
            "dividend_yield": _num(row.get("dividend_yield")),
            "forward_method": row.get("method"),
        }
    return out


def slice_record(sl: Any, surface: Any, facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """One expiry of the report: identification, forward, ATM vol, SVI/eSSVI parameters and diagnostics."""
    import numpy as np

    expiry, root = _split_label(sl.label)
    facts = facts or {}
    p = sl.svi_fit.params
    w_svi_atm = float(p.total_variance(0.0))
    theta, rho_e, psi_e = surface.essvi_fit.params_at(sl.t)
    lo, hi = sl.quoted_range
    return {
        "expiry": expiry,
        "root": root,
        "label": sl.label,
        "settlement": facts.get("settlement"),
        "t": _num(sl.t),
        "days": _num(round(sl.t * 365.0, 4)),  # 4 decimals: 9 seconds; drops the float noise of ACT/365
        "forward": _num(sl.forward),
        "discount": _num(sl.discount),
        "rate": facts.get("rate"),
        "dividend_yield": facts.get("dividend_yield"),
        # forward-ATM vol of the arbitrage-free fit (not the quotes' ATM nor the skew smile's)
        "atm_iv_fit": _num(math.sqrt(sl.atm_total_variance / sl.t)) if sl.atm_total_variance > 0 else None,
        "atm_total_variance": _num(sl.atm_total_variance),
        "svi_atm_iv": _num(math.sqrt(w_svi_atm / sl.t)) if w_svi_atm > 0 else None,
        "quoted_k_range": [_num(math.log(lo)), _num(math.log(hi))],
        "n_quotes": int(sl.k.size),
        "n_liquid": int(sl.mc.n_liquid),
        # market-consistent layer (the surface volsurf uses)
        "rmse_vol_points": _num(sl.mc.rmse_vol_pts),
        "inside_band_share": _num(sl.mc.inside_share),
        "butterfly_violations": int(sl.mc.butterfly_violations),
        "calendar_violations": int(sl.mc.calendar_violations),
        "arb_inconsistent_quotes": int(np.count_nonzero(sl.arb_inconsistent)),
        # raw SVI
        "params": {k: _num(v) for k, v in p.as_dict().items()},
        "svi_flags": list(sl.svi_fit.flags),
        "svi_g_min": _num(sl.svi_fit.g_min),
        "svi_rmse_vol_points": _num(sl.svi.rmse_vol_pts),
        "svi_inside_band_share": _num(sl.svi.inside_share),
        "svi_butterfly_violations": int(sl.svi.butterfly_violations),
        "svi_calendar_violations": int(sl.svi.calendar_violations),
        # eSSVI
        "essvi_params": {"theta": _num(theta), "rho": _num(rho_e), "psi": _num(psi_e)},
        "essvi_rmse_vol_points": _num(sl.essvi.rmse_vol_pts),
        "essvi_inside_band_share": _num(sl.essvi.inside_share),
        "essvi_butterfly_violations": int(sl.essvi.butterfly_violations),
        "essvi_calendar_violations": int(sl.essvi.calendar_violations),
        # quotes alone
        "raw_butterfly_violations": int(sl.raw_butterfly_violations),
        "raw_calendar_violations": int(sl.raw_calendar_violations),
        "solver_status": sl.solver_status,
    }


def surface_summary(surface: Any, enriched: Any, *, min_t: float = SEVEN_DAYS, audit: Any = None) -> dict[str, Any]:
    """The JSON object of ``volsurf surface`` (pure: no I/O).

    Parameters
    ----------
    surface : Surface
        Output of :func:`fit_from_enriched` / :func:`volsurf.surface.fit.fit_surface`.
    enriched : EnrichedSnapshot
        The chain the surface was fitted to (metadata, settlement styles, rates).
    min_t : float
        Medians are taken over expiries with ``t >= min_t`` years (default 7 days: shorter smiles are noisy).
    audit : AuditReport, optional
        :func:`volsurf.surface.audit.audit_surface` result, added as ``audit``.

    Returns
    -------
    dict
        ``underlying``, ``trade_date``, ``valuation_time``, ``spot``, ``implied_spot``, ``source_file``,
        ``n_expiries``, ``medians`` (per layer ``mc`` / ``svi`` / ``essvi``: ``rmse_vol_points``,
        ``inside_band_share``), ``violations`` (totals), ``expiries`` (one record per fitted expiry, see
        :func:`slice_record`), ``skipped`` (``expiry``, ``root``, ``t``, ``days``, ``reason``),
        ``k_domain`` (log-moneyness), ``timings`` (seconds), ``warnings``.
    """
    meta = enriched.meta
    facts = _expiry_facts(enriched)
    records = []
    for sl in surface.slices:
        key = _split_label(sl.label)
        records.append(slice_record(sl, surface, facts.get(key)))
    summ = surface.summary(min_t=min_t)
    medians = {
        layer: {
            "rmse_vol_points": _num(summ[f"{layer}_rmse_vol_pts"]),
            "inside_band_share": _num(summ[f"{layer}_inside_share"]),
        }
        for layer in ("mc", "svi", "essvi")
    }
    skipped = []
    for label, t, reason in surface.skipped:
        expiry, root = _split_label(label)
        skipped.append({"expiry": expiry, "root": root, "t": _num(t), "days": _num(round(t * 365.0, 4)), "reason": reason})
    svi_flagged = sum(1 for sl in surface.slices if sl.svi_fit.flags)
    return {
        "underlying": meta.underlying,
        "trade_date": _iso(meta.trade_date),
        "valuation_time": _iso(meta.valuation_time),
        "spot": _num(meta.spot),
        "implied_spot": _num(getattr(enriched, "implied_spot", float("nan"))),
        "source_file": getattr(meta, "source_file", None),
        "units": "t years, days calendar (365 t), vols decimal, rmse in vol points, k = ln(K/F)",
        "n_expiries": len(records),
        "n_expiries_in_medians": int(summ["n_slices_min_t"]),
        "medians_min_days": _num(min_t * 365.0),
        "medians": medians,
        "violations": {
            "butterfly": int(summ["mc_butterfly_violations"]),
            "calendar": int(summ["mc_calendar_violations"]),
            "raw_butterfly": int(summ["raw_butterfly_violations"]),
            "raw_calendar": int(summ["raw_calendar_violations"]),
            "arb_inconsistent_quotes": int(sum(r["arb_inconsistent_quotes"] for r in records)),
            "svi_butterfly": int(sum(r["svi_butterfly_violations"] for r in records)),
            "svi_calendar": int(sum(r["svi_calendar_violations"] for r in records)),
            "essvi_butterfly": int(sum(r["essvi_butterfly_violations"] for r in records)),
            "essvi_calendar": int(sum(r["essvi_calendar_violations"] for r in records)),
            "svi_flagged_expiries": int(svi_flagged),
        },
        "k_domain": [_num(math.log(surface.k_domain[0])), _num(math.log(surface.k_domain[1]))],
        "expiries": records,
        "skipped": skipped,
        "timings": {k: _num(v) for k, v in surface.timings.items()},
        "warnings": list(getattr(enriched, "warnings", ()) or ()),
        "solver_status": {sl.label: sl.solver_status for sl in surface.slices},
        **({"audit": audit.to_dict()} if audit is not None else {}),
    }


def table_rows(summary: dict[str, Any], columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Flat per-expiry rows of a :func:`surface_summary` result (SVI/eSSVI parameters as columns)."""
    cols = columns or CSV_COLUMNS
    rows = []
    for r in summary["expiries"]:
        flat = dict(r)
        flat.update({f"svi_{k}": v for k, v in r["params"].items()})
        flat.update({f"essvi_{k}": v for k, v in r["essvi_params"].items()})
        flat["svi_flags"] = ";".join(r["svi_flags"])
        rows.append({c: flat.get(c) for c in cols})
    return rows


def header_block(summary: dict[str, Any]) -> dict[str, Any]:
    """Key/value lines printed above the table: chain facts, the medians and violation totals."""
    med, vio = summary["medians"], summary["violations"]
    days = summary["medians_min_days"]
    out = {
        "underlying": summary["underlying"],
        "trade_date": summary["trade_date"],
        "valuation_time": summary["valuation_time"],
        "spot": summary["spot"],
        "implied_spot": summary["implied_spot"],
        "expiries_fitted": summary["n_expiries"],
        "expiries_skipped": len(summary["skipped"]),
        f"medians over expiries >= {days:g} days": summary["n_expiries_in_medians"],
        "surface_rmse_vol_points": med["mc"]["rmse_vol_points"],
        "surface_inside_band_share": med["mc"]["inside_band_share"],
        "svi_rmse_vol_points": med["svi"]["rmse_vol_points"],
        "svi_inside_band_share": med["svi"]["inside_band_share"],
        "essvi_rmse_vol_points": med["essvi"]["rmse_vol_points"],
        "essvi_inside_band_share": med["essvi"]["inside_band_share"],
        "butterfly_violations": vio["butterfly"],
        "calendar_violations": vio["calendar"],
        "raw_quote_violations": f"butterfly {vio['raw_butterfly']}, calendar {vio['raw_calendar']}",
        "arb_inconsistent_quotes": vio["arb_inconsistent_quotes"],
        "fit_seconds": summary["timings"].get("total"),
    }
    failed = [f"{k}: {v}" for k, v in summary.get("solver_status", {}).items() if v not in ("Solved", "AlmostSolved")]
    out["qp_solver"] = "; ".join(failed) if failed else "solved on every expiry"
    if "audit" in summary:
        a = summary["audit"]
        out["audit (sampled query API)"] = (
            f"{a['n_points']} points, {a['n_times']} times, k {a['k_range'][0]:.3f}..{a['k_range'][1]:.3f} "
            f"step {a['k_step']:g}")
        out["audit violations"] = (
            f"butterfly {a['butterfly']['count']}, monotonicity {a['monotonicity']['count']}, bounds "
            f"{a['bounds']['count']}, calendar {a['calendar']['count']}, IV jumps > "
            f"{a['iv_jumps_over_limit']['limit_vol_pts']:g} vol pts {a['iv_jumps_over_limit']['count']}")
        out["audit max IV step (vol points)"] = a["max_iv_jump_vol_pts"]
    for s in summary["skipped"]:
        out[f"skipped {s['expiry']} {s['root']}".strip()] = s["reason"]
    for i, w in enumerate(summary["warnings"]):
        out[f"warning {i + 1}"] = w
    return out


__all__ = ["CSV_COLUMNS", "TABLE_COLUMNS", "fit_from_enriched", "header_block", "slice_record", "surface_summary",
           "table_rows"]
