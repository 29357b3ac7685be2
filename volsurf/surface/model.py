"""Data model of the surface fit (quotes in, fitted slices out) and the normalised Black helpers shared by the
fit, the QP, the query API and the audit.

Notes
-----
Per expiry (time ``t``, forward ``F``, discount ``D``) prices are normalised, ``c = C / (D F)`` at ``k = K / F``;
the Black call in these units is ``c(k, w) = N(d1) - k N(d1 - sqrt(w))`` with ``d1 = -ln k / sqrt(w) + sqrt(w) / 2``
and total variance ``w = sigma^2 t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from volsurf.surface.basis import bspline_eval
from volsurf.surface.svi import SVIFit

SEVEN_DAYS = 7.0 / 365.0
INSIDE_TOL = 1e-3  # share of the half-spread tolerated as "inside" (solver precision)
ARB_TOL = 1e-9  # normalised price; tolerance of the dense-grid arbitrage diagnostics


@dataclass(frozen=True)
class ExpiryQuotes:
    """Quotes of one expiry.

    Attributes
    ----------
    t : float
        Time to expiry, years.
    forward : float
        Forward price (index points / dollars).
    discount : float
        Discount factor to expiry.
    strike, is_call, bid, ask : arrays
        One entry per contract; premiums in points. ``bid <= 0`` or NaN means no bid.
    label : str
        Expiry label for reports (e.g. ``2026-09-18 SPX``).
    """

    t: float
    forward: float
    discount: float
    strike: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    label: str = ""


@dataclass(frozen=True)
class LayerDiagnostics:
    """Fit quality of one layer on one expiry (liquid quotes: OTM, bid > 0).

    Attributes
    ----------
    rmse_vol_pts : float
        RMS of fitted IV minus mid IV, in vol points (1 = 0.01 decimal vol).
    inside_share : float
        Share of liquid quotes whose fitted price (equivalently IV) lies inside the bid/ask band.
    n_liquid : int
        Number of liquid quotes.
    butterfly_violations : int
        Points of a dense strike grid where the fitted call price is not convex/monotone/in bounds.
    calendar_violations : int
        Points of the dense grid where this slice's normalised call price is below the previous slice's.
    """

    rmse_vol_pts: float
    inside_share: float
    n_liquid: int
    butterfly_violations: int
    calendar_violations: int


@dataclass(frozen=True)
class SliceFit:
    """Everything about one fitted expiry (what a chart needs).

    Per-quote arrays (all OTM quotes with an ask, sorted by strike): ``strike``, ``k`` (= K/F), ``is_call``,
    ``bid``, ``ask`` (premiums), ``liquid`` (bid > 0), ``iv_bid``, ``iv_mid``, ``iv_ask`` (market, decimal),
    ``iv_mc``, ``iv_svi``, ``iv_essvi`` (fitted), ``inside_mc``, ``inside_svi``, ``arb_inconsistent`` (the
    market layer had to leave the band: the quote conflicts with no-arbitrage given its neighbours).
    Spline: ``knots`` (clamped cubic knot vector in k, shared by all slices), ``coef`` (B-spline coefficients of
    c); ``quoted_range`` (k range of the liquid quotes). ``mc``, ``svi``, ``essvi``: :class:`LayerDiagnostics`.
    ``svi_fit``: :class:`SVIFit`. ``raw_butterfly_violations``: triples/pairs of quotes whose bid/ask bands alone
    violate convexity, monotonicity or bounds. ``raw_calendar_violations``: quotes whose ask is below the previous
    expiry's bid (interpolated at the same k). ``solver_status``: Clarabel's status of the slice's final QP.
    """

    label: str
    t: float
    forward: float
    discount: float
    strike: np.ndarray
    k: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    liquid: np.ndarray
    iv_bid: np.ndarray
    iv_mid: np.ndarray
    iv_ask: np.ndarray
    iv_mc: np.ndarray
    iv_svi: np.ndarray
    iv_essvi: np.ndarray
    inside_mc: np.ndarray
    inside_svi: np.ndarray
    arb_inconsistent: np.ndarray
    knots: np.ndarray
    coef: np.ndarray
    quoted_range: tuple[float, float]
    svi_fit: SVIFit
    mc: LayerDiagnostics
    svi: LayerDiagnostics
    essvi: LayerDiagnostics
    raw_butterfly_violations: int
    raw_calendar_violations: int
    atm_total_variance: float
    solver_status: str = "Solved"

    def call_normalised(self, k: np.ndarray | float) -> np.ndarray:
        """Market-layer ``c(k) = C / (D F)`` at ``k = K / F`` (inside the knot range; clipped outside)."""
        return bspline_eval(self.knots, self.coef, np.asarray(k, dtype=float))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (parameters and diagnostics, no per-quote arrays)."""
        return {
            "label": self.label,
            "t": self.t,
            "forward": self.forward,
            "discount": self.discount,
            "quoted_k_range": list(self.quoted_range),
            "atm_iv_fit": float(np.sqrt(self.atm_total_variance / self.t)),
            "svi": {**self.svi_fit.params.as_dict(), "g_min": self.svi_fit.g_min, "flags": list(self.svi_fit.flags)},
            "mc": self.mc.__dict__,
            "svi_diag": self.svi.__dict__,
            "essvi_diag": self.essvi.__dict__,
            "raw_butterfly_violations": self.raw_butterfly_violations,
            "raw_calendar_violations": self.raw_calendar_violations,
            "arb_inconsistent_quotes": int(np.count_nonzero(self.arb_inconsistent)),
        }


@dataclass
class PreparedExpiry:
    """OTM quotes of one expiry as normalised call-equivalent bands (filled in stages by the fit).

    Attributes
    ----------
    q : ExpiryQuotes
        The input quotes.
    strike, k, is_call, bid, ask, liquid : numpy.ndarray
        OTM quotes with an ask, sorted by strike; ``k = K / F``; ``liquid``: bid > 0.
    lo, hi : numpy.ndarray
        Normalised call-equivalent band ``[bid, ask] / (D F)`` (puts moved by parity).
    iv_bid, iv_mid, iv_ask : numpy.ndarray
        Market IVs (decimal; NaN until filled).
    atm_w : float
        ATM total variance from the two quotes nearest the money (NaN until filled).
    svi : SVIFit or None
        Raw SVI fit (set by the parametric layer).
    """

    q: ExpiryQuotes
    strike: np.ndarray
    k: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    liquid: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    iv_bid: np.ndarray
    iv_mid: np.ndarray
    iv_ask: np.ndarray
    atm_w: float
    svi: SVIFit | None = None

    @property
    def svi_fit(self) -> SVIFit:
        """The raw SVI fit (raises when the parametric layer has not run yet)."""
        if self.svi is None:
            raise RuntimeError("raw SVI not fitted yet")
        return self.svi


def bs_call_norm(k: np.ndarray | float, w: np.ndarray | float) -> np.ndarray:
    """Normalised Black call ``c(k, w)`` for ``k = K/F`` and total variance ``w``."""
    k = np.asarray(k, dtype=float)
    s = np.sqrt(np.maximum(np.asarray(w, dtype=float), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = -np.log(k) / s + 0.5 * s
    out = ndtr(d1) - k * ndtr(d1 - s)
    return np.where(s > 0, out, np.maximum(1.0 - k, 0.0))


def iv_norm(c: np.ndarray | float, k: np.ndarray | float, t: float) -> np.ndarray:
    """Implied vol of normalised call prices (NaN where not identifiable)."""
    from volsurf.pricing.iv import implied_volatility

    c = np.asarray(c, dtype=float)
    k = np.broadcast_to(np.asarray(k, dtype=float), c.shape)
    return implied_volatility(c, np.ones_like(c), k, np.full(c.shape, float(t)), np.ones(c.shape, dtype=bool), 1.0)


def iv_quotes(price: np.ndarray, forward: np.ndarray, strike: np.ndarray, t: np.ndarray, is_call: np.ndarray,
              discount: np.ndarray) -> np.ndarray:
    """Implied vols of premiums (non-positive premiums give NaN)."""
    from volsurf.pricing.iv import implied_volatility

    with np.errstate(invalid="ignore"):
        p = np.where(np.asarray(price) > 0, price, np.nan)
    return implied_volatility(p, forward, strike, t, is_call, discount)


def dense_arbitrage(c: np.ndarray, k: np.ndarray, tol: float) -> int:
    """Count butterfly / monotonicity / bound violations of normalised calls ``c`` on an increasing grid ``k``."""
    dk = np.diff(k)
    slope = np.diff(c) / dk
    bad = int(np.count_nonzero(np.diff(slope) < -tol / np.minimum(dk[1:], dk[:-1])))
    bad += int(np.count_nonzero(slope > tol / dk) + np.count_nonzero(slope < -1.0 - tol / dk))
    bad += int(np.count_nonzero(c < np.maximum(1.0 - k, 0.0) - tol) + np.count_nonzero(c > 1.0 + tol))
    return bad
