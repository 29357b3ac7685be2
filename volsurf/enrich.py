"""Enrich a snapshot: time to expiry, implied forward and discount, bid/mid/ask IV and greeks per contract.

Added columns (per contract)
----------------------------
=================  =========================================================================================
column             meaning
=================  =========================================================================================
t                  years from the snapshot's valuation time to settlement (ACT/365 on minutes)
forward            implied forward for the contract's expiry (:mod:`volsurf.forwards`)
discount           discount factor to expiry
mid                (bid + ask) / 2 when bid > 0 and ask >= bid, else NaN
iv_bid/mid/ask     Black-76 implied vol (decimal) of the bid, mid and ask; NaN with a reason in iv_status
iv_status          status of the mid IV: ok, no_bid, crossed, below_intrinsic, above_upper_bound,
                   vega_too_small, bad_input
otm                True for puts with K < F and calls with K >= F (the side the smile uses)
delta              spot delta ``dV/dS`` from mid IV (per 1 point of underlying; calls 0..1, puts -1..0)
gamma              spot gamma ``d2V/dS2`` from mid IV, per 1 point of underlying
vega               premium points per 1 vol point (0.01 of vol)
theta              premium points per calendar day
=================  =========================================================================================

The per-expiry table (``EnrichedSnapshot.expiries``) holds expiry, root, expiry_date, settlement, t,
forward, discount, rate, dividend_yield, method, n_pairs, parity_residual_max, atm_iv.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from volsurf import pricing
from volsurf.forwards import DEFAULT_DIVIDEND_YIELD, DEFAULT_RATE, implied_forwards, implied_spot
from volsurf.snapshot import Snapshot, SnapshotMeta
from volsurf.timing import year_fraction


@dataclass(frozen=True)
class EnrichedSnapshot:
    """A snapshot with per-contract analytics (``frame``) and per-expiry forwards (``expiries``)."""

    frame: pd.DataFrame
    meta: SnapshotMeta
    expiries: pd.DataFrame
    assumptions: dict
    implied_spot: float = float("nan")
    warnings: tuple[str, ...] = ()

    def with_frame(self, frame: pd.DataFrame) -> EnrichedSnapshot:
        """A copy with another frame."""
        return replace(self, frame=frame)


def _status_names(status: np.ndarray) -> np.ndarray:
    from volsurf.iv import IV_STATUS_NAMES

    status = np.asarray(status)
    if status.dtype.kind in "iu":
        lut = np.array([IV_STATUS_NAMES.get(i, "unknown") for i in range(max(IV_STATUS_NAMES) + 1)], dtype=object)
        return lut[status]
    return status.astype(object)


def atm_iv_by_expiry(frame: pd.DataFrame) -> pd.Series:
    """ATM (forward) IV per (expiry, root): OTM mid IVs interpolated linearly in log-moneyness at k = 0.

    Uses the nearest OTM quote on each side of the forward; NaN when one side is missing.
    """
    f = frame.loc[frame["otm"] & np.isfinite(frame["iv_mid"]), ["expiry", "root", "strike", "forward", "iv_mid"]]
    k = np.log(f["strike"] / f["forward"])
    f = f.assign(k=k)
    below = f[f["k"] < 0].sort_values("k").groupby(["expiry", "root"]).tail(1).set_index(["expiry", "root"])
    above = f[f["k"] >= 0].sort_values("k").groupby(["expiry", "root"]).head(1).set_index(["expiry", "root"])
    j = below[["k", "iv_mid"]].join(above[["k", "iv_mid"]], how="inner", suffixes=("_lo", "_hi"))
    w = (0 - j["k_lo"]) / (j["k_hi"] - j["k_lo"])
    return (j["iv_mid_lo"] + w * (j["iv_mid_hi"] - j["iv_mid_lo"])).rename("atm_iv")


def enrich(
    snapshot: Snapshot,
    *,
    default_rate: float = DEFAULT_RATE,
    default_dividend_yield: float = DEFAULT_DIVIDEND_YIELD,
    valuation_time: pd.Timestamp | None = None,
) -> EnrichedSnapshot:
    """Add t, forward, discount, bid/mid/ask IV, status and greeks to every contract.

    A pure function of one snapshot (and the optional overrides), so it can be mapped over many snapshots.

    Parameters
    ----------
    snapshot : Snapshot
        From :func:`volsurf.formats.load`.
    default_rate, default_dividend_yield : float
        Used only where put-call parity cannot identify the forward or discount (see :mod:`volsurf.forwards`).
    valuation_time : Timestamp, optional
        Overrides ``snapshot.meta.valuation_time`` (e.g. to value at a later time of day).
    """
    from volsurf.iv import implied_volatility_with_status

    meta = snapshot.meta
    val = meta.valuation_time if valuation_time is None else pd.Timestamp(valuation_time)
    f = snapshot.frame.copy()
    f["t"] = year_fraction(val, f["expiry"])
    f = f.loc[f["t"] > 0].reset_index(drop=True)  # only when valuation_time is overridden past some expiry

    t_by_expiry = f.groupby(["expiry", "root"], sort=True)["t"].first()
    fw = implied_forwards(f, t_by_expiry, meta.spot, default_rate=default_rate,
                          default_dividend_yield=default_dividend_yield)
    f = f.merge(fw[["expiry", "root", "forward", "discount"]], on=["expiry", "root"], how="left")

    bid, ask = f["bid"].to_numpy(), f["ask"].to_numpy()
    usable = (bid > 0) & (ask >= bid)
    mid = np.where(usable, (bid + ask) / 2, np.nan)
    f["mid"] = mid
    fwd, k, t, disc = (f[c].to_numpy() for c in ("forward", "strike", "t", "discount"))
    is_call = (f["type"] == "call").to_numpy()

    iv_mid, st_mid = implied_volatility_with_status(mid, fwd, k, t, is_call, disc)
    iv_bid, _ = implied_volatility_with_status(np.where(bid > 0, bid, np.nan), fwd, k, t, is_call, disc)
    iv_ask, _ = implied_volatility_with_status(np.where(ask > 0, ask, np.nan), fwd, k, t, is_call, disc)
    status = _status_names(st_mid)
    with np.errstate(invalid="ignore"):
        status = np.where(~(bid > 0), "no_bid", np.where(bid > ask, "crossed", status))
    f["iv_bid"], f["iv_mid"], f["iv_ask"] = iv_bid, iv_mid, iv_ask
    f["iv_status"] = status
    f["otm"] = np.where(is_call, k >= fwd, k < fwd)

    spot = meta.spot
    carry = fwd / spot
    sig = np.where(np.isfinite(iv_mid), iv_mid, np.nan)
    f["delta"] = pricing.delta(fwd, k, t, sig, is_call, disc) * carry
    f["gamma"] = np.where(np.isfinite(sig), pricing.spot_gamma(spot, fwd, k, t, sig, disc), np.nan)
    f["vega"] = np.where(np.isfinite(sig), pricing.vega(fwd, k, t, sig, disc) / 100.0, np.nan)
    f["theta"] = np.where(np.isfinite(sig), pricing.theta(fwd, k, t, sig, is_call, disc) / 365.0, np.nan)

    exp = fw.copy()
    first = f.groupby(["expiry", "root"], sort=True)[["expiry_date", "settlement"]].first()
    exp = exp.join(first, on=["expiry", "root"])
    atm = atm_iv_by_expiry(f)
    exp = exp.join(atm, on=["expiry", "root"])
    exp = exp[["expiry", "root", "expiry_date", "settlement", "t", "forward", "discount", "rate", "dividend_yield",
               "atm_iv", "method", "n_pairs", "parity_residual_max"]]
    assumptions = {
        "valuation_time": val.isoformat(),
        "day_count": "ACT/365 on minutes from valuation time to settlement (AM 09:30, PM 16:00 New York)",
        "forward_method": "put-call parity per expiry (Theil-Sen on near-the-money pairs; see volsurf.forwards)",
        "default_rate": default_rate,
        "default_dividend_yield": default_dividend_yield,
        "greeks": "Black-76 on the implied forward from mid IV; delta/gamma per 1 point of spot",
    }
    s_star = implied_spot(fw, meta.spot)
    warnings = []
    if abs(s_star / meta.spot - 1) > 0.0025:
        warnings.append(
            f"the file's spot {meta.spot:g} differs from the spot implied by put-call parity {s_star:.2f} "
            f"({(s_star / meta.spot - 1) * 100:+.2f}%): the 'Last' print is probably stale"
        )
    assumptions["implied_spot"] = s_star
    return EnrichedSnapshot(frame=f, meta=meta, expiries=exp.reset_index(drop=True), assumptions=assumptions,
                            implied_spot=s_star, warnings=tuple(warnings))
