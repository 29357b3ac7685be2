"""The per-snapshot measurement: skew, variance index, OTM put demand and calendar context of one snapshot.

:func:`snapshot_metrics` is a pure function of one :class:`~volsurf.market.snapshot.Snapshot` (no I/O, no global
state), so a series can be built by mapping it over any store of snapshots (files, a Parquet store, a
distributed engine) and ordering the results (:mod:`volsurf.history.track`).

Pipeline per snapshot: enrich (forwards, IVs) -> smile surface (the fitted arbitrage-free surface, or
:class:`volsurf.analytics.skew.NodeSmileSurface` on OTM mid IVs) -> skew per expiry and at constant maturities ->
30-day variance index (Cboe VIX methodology) -> OTM put demand -> calendar context.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volsurf.analytics.demand import DemandChange, DemandMetrics, otm_put_demand
from volsurf.analytics.skew import (
    CONSTANT_MATURITY_DAYS,
    METRIC_FIELDS,
    NodeSmileSurface,
    SmileMetrics,
    SmileSurface,
    constant_maturity_metrics,
    expiry_metrics,
)
from volsurf.errors import DataError, ParameterError, VolsurfError
from volsurf.market.snapshot import Snapshot
from volsurf.units import DAYS_PER_YEAR

# Fewest OTM quotes with a mid IV for an expiry to enter the node surface, and the ATM must be bracketed.
MIN_NODES = 5


@dataclass(frozen=True)
class SurfaceInput:
    """The smile surface handed to the skew core, with the expiries (years) it is defined on."""

    surface: SmileSurface
    expiry_times: np.ndarray
    expiries: pd.DataFrame  # expiry, expiry_date, root, t, forward
    source: str


def node_surface(frame: pd.DataFrame) -> SurfaceInput:
    """:class:`NodeSmileSurface` from an enriched frame: OTM mid IVs (``iv_status == 'ok'``) per expiry.

    Expiries with fewer than :data:`MIN_NODES` usable quotes or no quote on one side of the forward are left
    out (a smile without both sides has no ATM vol). Expiries sharing a settlement instant (two roots) are
    merged.
    """
    ok = frame["otm"].to_numpy(dtype=bool) & np.isfinite(frame["iv_mid"].to_numpy(dtype=float))
    if "iv_status" in frame.columns:
        ok &= (frame["iv_status"] == "ok").to_numpy()
    t_all = frame["t"].to_numpy(dtype=float)
    ok &= t_all > 0
    # Group by settlement instant with integer codes and bincount (pandas string groupbys are slow).
    codes, uniq = pd.factorize(frame["expiry"], sort=True)
    c = codes[ok]
    k = np.log(frame["strike"].to_numpy(dtype=float)[ok] / frame["forward"].to_numpy(dtype=float)[ok])
    iv = frame["iv_mid"].to_numpy(dtype=float)[ok]
    n_g = len(uniq)
    n = np.bincount(c, minlength=n_g)
    below = np.bincount(c, weights=(k < 0).astype(float), minlength=n_g)
    above = n - below
    fwd_sum = np.bincount(c, weights=frame["forward"].to_numpy(dtype=float)[ok], minlength=n_g)
    t_g = np.full(n_g, np.nan)
    t_g[codes] = t_all  # one time per settlement instant
    good = (n >= MIN_NODES) & (below > 0) & (above > 0)
    if not good.any():
        raise DataError(
            "no expiry has enough OTM quotes with an implied vol on both sides of the forward",
            hint="the file may be near-ATM only, after-hours with zero bids, or truncated",
        )
    sel = good[c]
    c, k, iv = c[sel], k[sel], iv[sel]
    order = np.lexsort((k, c))
    c, k, iv = c[order], k[order], iv[order]
    bounds = np.flatnonzero(np.diff(c)) + 1
    ks, ivs = np.split(k, bounds), np.split(iv, bounds)
    g_idx = np.flatnonzero(good)
    fwd = fwd_sum[g_idx] / n[g_idx]
    surface = NodeSmileSurface(t_g[g_idx], fwd, ks, ivs)
    first_row = np.full(n_g, -1)
    first_row[codes[::-1]] = np.arange(len(codes))[::-1]
    rows = first_row[g_idx]
    table = pd.DataFrame(
        {
            "expiry": uniq[g_idx],
            "expiry_date": frame["expiry_date"].to_numpy()[rows].astype(str),
            "root": frame["root"].to_numpy()[rows].astype(str),
            "t": t_g[g_idx],
            "forward": fwd,
        }
    )
    return SurfaceInput(surface, surface.expiry_times, table, "nodes: PCHIP in log-moneyness through OTM mid IVs")


SURFACE_METHODS = ("nodes", "fitted")


def build_surface(enriched: Any, method: str = "nodes") -> SurfaceInput:
    """The surface handed to the skew core.

    ``nodes`` (default): :func:`node_surface`, PCHIP through OTM mid IVs (milliseconds per chain).
    ``fitted``: the arbitrage-free :func:`volsurf.surface.fit.fit_surface` (about half a second per chain).
    """
    if method not in SURFACE_METHODS:
        raise ParameterError(f"unknown surface method {method!r}", hint=f"one of {', '.join(SURFACE_METHODS)}")
    if method == "nodes":
        return node_surface(enriched.frame)
    from volsurf.surface.fit import expiry_quotes_from_enriched, fit_surface

    return surface_input_from_fit(fit_surface(expiry_quotes_from_enriched(enriched)))


def surface_input_from_fit(surf: Any) -> SurfaceInput:
    """Wrap an already fitted :class:`volsurf.surface.fit.Surface` for the skew core (no refit)."""
    labels = [s.label.split(" ") for s in surf.slices]
    table = pd.DataFrame(
        {
            "expiry_date": [x[0] for x in labels],
            "root": [x[1] if len(x) > 1 else "" for x in labels],
            "t": surf.t,
            "forward": [s.forward for s in surf.slices],
        }
    )
    return SurfaceInput(surf, np.asarray(surf.t, dtype=float), table, "volsurf.surface.fit.fit_surface (arbitrage-free)")


@dataclass(frozen=True, eq=False)
class SnapshotMetrics:
    """Everything ``volsurf skew`` reports for one snapshot.

    Attributes
    ----------
    meta : dict
        Snapshot metadata (:meth:`SnapshotMeta.to_dict`).
    trade_date : str
        ISO date of the session.
    constant_maturity : tuple of SmileMetrics
        At :data:`volsurf.analytics.skew.CONSTANT_MATURITY_DAYS`.
    per_expiry : DataFrame
        One row per expiry on the surface with the skew figures.
    variance_index : dict
        :meth:`VarianceIndexResult.to_dict` or ``{available: False, reason}``.
    skew_index : dict
        :meth:`volsurf.analytics.skew_index.SkewIndexResult.to_dict` (the Cboe SKEW method on the VIX strip) or
        ``{available: False, reason}``.
    demand : DemandMetrics
    calendar : dict
        :meth:`CalendarContext.to_dict`.
    surface_source : str
        Which surface produced the skew.
    notes : tuple of str
    """

    meta: dict[str, Any]
    trade_date: str
    constant_maturity: tuple[SmileMetrics, ...]
    per_expiry: pd.DataFrame
    variance_index: dict[str, Any]
    demand: DemandMetrics
    calendar: dict[str, Any]
    surface_source: str
    skew_index: dict[str, Any] = field(default_factory=dict)
    smile_nodes: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    smile_curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False, default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def variance_index_30d(self) -> float:
        v = self.variance_index.get("index")
        return float(v) if v is not None else math.nan

    @property
    def skew_index_30d(self) -> float:
        """The 30-day SKEW-method index (points, 100 = no skew), NaN when unavailable."""
        v = self.skew_index.get("index")
        return float(v) if v is not None else math.nan

    @property
    def skew_index_sensitivity(self) -> float:
        """How far the SKEW index moves when the strip loses its farthest puts (points; see docs/skew_index.md)."""
        v = self.skew_index.get("sensitivity")
        return float(v) if v is not None else math.nan

    def cm(self, days: int) -> SmileMetrics | None:
        """The constant-maturity metrics at ``days`` (None if not computed)."""
        for m in self.constant_maturity:
            if round(m.days) == days:
                return m
        return None

    def record(self) -> dict[str, Any]:
        """Flat dict for time series and flags: ``<metric>_<days>d`` per constant maturity, demand, calendar."""
        rec: dict[str, Any] = {
            "trade_date": self.trade_date,
            "underlying": self.meta.get("underlying"),
            "valuation_time": self.meta.get("valuation_time"),
            "spot": self.meta.get("spot"),
            "source_file": self.meta.get("source_file"),
        }
        for m in self.constant_maturity:
            d = round(m.days)
            for name in METRIC_FIELDS:
                rec[f"{name}_{d}d"] = getattr(m, name)
        rec["variance_index_30d"] = self.variance_index_30d
        rec["skew_index_30d"] = self.skew_index_30d
        rec["skew_index_sensitivity"] = self.skew_index_sensitivity
        rec.update(self.demand.headline())
        qe = self.demand.quarter_end or {}
        rec["quarter_end_expiry"] = qe.get("expiry_date")
        rec["quarter_end_otm_put_oi_share"] = qe.get("otm_put_oi_share", math.nan)
        rec["quarter_end_put_oi"] = qe.get("put_oi", math.nan)
        for k in ("trading_days_to_quarter_end", "in_quarter_end_window", "in_year_end_window", "quarter_end_date"):
            rec[k] = self.calendar.get(k)
        return rec

    def to_dict(self) -> dict[str, Any]:
        """The ``volsurf skew --format json`` object."""
        cm = []
        for m in self.constant_maturity:
            d = m.to_dict()
            d["days"] = round(m.days)
            cm.append(d)
        dem = self.demand.to_dict()
        return {
            "trade_date": self.trade_date,
            "underlying": self.meta.get("underlying"),
            "spot": self.meta.get("spot"),
            "valuation_time": self.meta.get("valuation_time"),
            "source_file": self.meta.get("source_file"),
            "surface_source": self.surface_source,
            "delta_convention": "undiscounted forward delta N(d1), not premium-adjusted; smile delta",
            "units": "decimal vol (0.05 = 5 vol points); variance index in VIX points; shares decimal",
            "constant_maturity": cm,
            "per_expiry": self.per_expiry.to_dict(orient="records"),
            "variance_index_30d": self.variance_index_30d,
            "variance_index": self.variance_index,
            "skew_index_30d": self.skew_index_30d,
            "skew_index": self.skew_index,
            "otm_put_volume_share": self.demand.otm_put_volume_share,
            "otm_put_oi_share": self.demand.otm_put_oi_share,
            "put_call_volume_ratio": self.demand.put_call_volume_ratio,
            "put_call_oi_ratio": self.demand.put_call_oi_ratio,
            "demand": dem,
            "calendar": self.calendar,
            "notes": list(self.notes),
        }


def _indices(snapshot: Snapshot) -> tuple[dict[str, Any], dict[str, Any]]:
    """The variance index and the SKEW index of the snapshot (as JSON dicts); the SKEW index reuses the variance
    index's two terms."""
    from volsurf.analytics.skew_index import skew_index_from_chain
    from volsurf.analytics.variance_index import VarianceIndexResult, variance_index_from_chain

    roots = sorted(set(snapshot.frame["root"].astype(str).unique()))
    val = snapshot.meta.valuation_time
    vr: VarianceIndexResult | None = None
    try:
        vr = variance_index_from_chain(snapshot.frame, val, roots=roots)
        vix = vr.to_dict()
    except VolsurfError as exc:
        vix = {"available": False, "index": None, "reason": exc.one_line()}
    try:
        skew = skew_index_from_chain(snapshot.frame, val, roots=roots, variance=vr).to_dict()
    except VolsurfError as exc:
        skew = {"available": False, "index": None, "reason": exc.one_line(), "warnings": []}
    return vix, skew


def _calendar(trade_date: Any) -> dict[str, Any]:
    from volsurf.market.calendar import calendar_context

    return calendar_context(trade_date).to_dict()


def snapshot_metrics(
    snapshot: Snapshot,
    *,
    days: Sequence[int] = CONSTANT_MATURITY_DAYS,
    surface: str = "nodes",
    per_expiry: bool = True,
    enriched: Any = None,
    fitted_surface: Any = None,
    chart_data: bool | None = None,
) -> SnapshotMetrics:
    """Skew, variance index, demand and calendar context of one snapshot (pure function of the snapshot).

    Parameters
    ----------
    snapshot : Snapshot
    days : sequence of int
        Constant maturities (calendar days).
    surface : str
        ``nodes`` or ``fitted`` (see :func:`build_surface`).
    per_expiry : bool
        Also compute the skew of every expiry (the time series needs only the constant maturities).
    enriched : EnrichedSnapshot, optional
        ``enrich(snapshot)`` if the caller already has it (the report shares one across sections).
    fitted_surface : volsurf.surface.fit.Surface, optional
        An already fitted surface to measure the skew on (overrides ``surface``).
    chart_data : bool, optional
        Keep the constant-maturity smile curves and the quote nodes for charts (default: ``per_expiry``).

    Raises
    ------
    DataError
        When no smile can be built at all (demand and calendar would still be computable: use
        :func:`otm_put_demand` directly for such files).
    """
    from volsurf.pricing.enrich import enrich

    notes: list[str] = []
    if chart_data is None:
        chart_data = per_expiry
    if enriched is None:
        # Only the mid IV, status, forward and t are used here: skip bid/ask IVs and greeks (~40% of enrich).
        enriched = enrich(snapshot, quote_ivs=False, greeks=False)
    ef = enriched.frame
    try:
        si = surface_input_from_fit(fitted_surface) if fitted_surface is not None else build_surface(enriched, surface)
        cms = tuple(constant_maturity_metrics(si.surface, si.expiry_times, days))
        per = expiry_metrics(si.surface, si.expiry_times) if per_expiry else []
        per_df = pd.DataFrame([m.to_dict() for m in per])
        curves = _cm_curves(si, days) if chart_data else {}
        tab = si.expiries.reset_index(drop=True)
        for c in ("expiry_date", "root"):
            if c in tab.columns and len(tab) == len(per_df):
                per_df.insert(0, c, tab[c].astype(str).to_numpy())
        source = si.source
    except DataError as exc:
        notes.append(f"no smile surface: {exc.one_line()}")
        cms = tuple(_unavailable_cms(days, exc.one_line()))
        per_df = pd.DataFrame()
        curves = {}
        source = "none"
    nodes = (
        ef.loc[
            ef["otm"].to_numpy(dtype=bool) & np.isfinite(ef["iv_mid"].to_numpy(dtype=float)),
            ["expiry", "expiry_date", "t", "strike", "forward", "iv_mid"],
        ].reset_index(drop=True)
        if chart_data
        else pd.DataFrame()
    )
    demand = otm_put_demand(ef, spot=snapshot.meta.spot, trade_date=snapshot.meta.trade_date)
    notes.extend(demand.notes)
    variance_index, skew_index = _indices(snapshot)
    return SnapshotMetrics(
        meta=snapshot.meta.to_dict(),
        trade_date=snapshot.meta.trade_date.isoformat(),
        constant_maturity=cms,
        per_expiry=per_df,
        variance_index=variance_index,
        skew_index=skew_index,
        demand=demand,
        calendar=_calendar(snapshot.meta.trade_date),
        surface_source=source,
        # Quotes are kept only for charts (chart_data); tracking results stay small to pickle/store.
        smile_nodes=nodes,
        smile_curves=curves,
        notes=tuple(notes),
    )


def _cm_curves(si: SurfaceInput, days: Sequence[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Constant-maturity smiles sampled on +-3 ATM standard deviations of k (for the smile chart)."""
    from volsurf.analytics.skew import constant_maturity_smile

    out = {}
    for d in days:
        smile = constant_maturity_smile(si.surface, si.expiry_times, d)
        if isinstance(smile, str):
            continue
        atm = float(smile.iv_k(np.zeros(1))[0])
        if not (np.isfinite(atm) and atm > 0):
            continue
        half = min(max(3.0 * atm * math.sqrt(smile.t), 0.02), 0.6)
        k = np.linspace(-1.5 * half, half, 121)
        out[f"{d}d"] = (k, smile.iv_k(k))
    return out


def _unavailable_cms(days: Sequence[int], reason: str) -> list[SmileMetrics]:
    from volsurf.analytics.skew import unavailable_metrics

    return [unavailable_metrics(d / DAYS_PER_YEAR, reason) for d in days]


def path_metrics(path: str, surface: str = "nodes", per_expiry: bool = False, as_of: Any = None) -> SnapshotMetrics:
    """Load one file and compute :func:`snapshot_metrics` (top-level so process pools can pickle it).

    ``as_of`` overrides the file's as-of time (see :func:`volsurf.io.load`)."""
    from volsurf.io import load

    return snapshot_metrics(load(path, as_of=as_of), surface=surface, per_expiry=per_expiry)


def like_for_like(change: DemandChange) -> dict[str, float]:
    """OTM put share changes over the expiries listed in both snapshots (recomputed from their sums)."""
    return dict(change.like_for_like)
