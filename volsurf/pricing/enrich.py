"""Enrich a snapshot: time to expiry, implied forward and discount, bid/mid/ask IV and greeks per contract.

Added columns (per contract)
----------------------------
=================  =========================================================================================
column             meaning
=================  =========================================================================================
t                  years from the snapshot's valuation time to settlement (ACT/365 on minutes)
forward            implied forward for the contract's expiry (:mod:`volsurf.pricing.forwards`)
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
forward, discount, rate, dividend_yield, method, n_pairs, parity_residual_max, atm_iv_quotes (the ATM vol of the
two OTM mid IVs nearest the forward, interpolated in log-moneyness; not the fitted surface's ``atm_iv_fit`` nor
the skew smile's ``atm_iv``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from volsurf.errors import DataQualityWarning, StaleSpotWarning, warn
from volsurf.market.snapshot import Snapshot, SnapshotMeta
from volsurf.market.timing import year_fraction
from volsurf.pricing import black76 as pricing
from volsurf.pricing.forwards import (
    DEFAULT_DIVIDEND_YIELD,
    DEFAULT_RATE,
    _forwards_table,
    _pairs_by_group,
    _pairs_by_key,
    implied_forwards,
    implied_spot,
)

#: Relative gap between the file's spot and the parity-implied spot above which the file's 'Last' is stale
#: (a StaleSpotWarning; GEX then uses the implied spot, see :mod:`volsurf.analytics.gex_report`).
STALE_SPOT_TOLERANCE = 0.0025


@dataclass(frozen=True)
class EnrichedSnapshot:
    """A snapshot with per-contract analytics (``frame``) and per-expiry forwards (``expiries``).

    ``removed``: the snapshot's removed rows plus, with a valuation-time override, the rows whose time to expiry
    is not positive at that time (reason ``expired_at_valuation``)."""

    frame: pd.DataFrame
    meta: SnapshotMeta
    expiries: pd.DataFrame
    assumptions: dict
    implied_spot: float = float("nan")
    warnings: tuple[str, ...] = ()
    removed: pd.DataFrame | None = None

    def with_frame(self, frame: pd.DataFrame) -> EnrichedSnapshot:
        """A copy with another frame."""
        return replace(self, frame=frame)


def _status_names(status: np.ndarray) -> np.ndarray:
    from volsurf.pricing.iv import IV_STATUS_NAMES

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
    return (j["iv_mid_lo"] + w * (j["iv_mid_hi"] - j["iv_mid_lo"])).rename("atm_iv_quotes")


def _group_codes(f: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-row (expiry, root) group id in ``groupby(["expiry", "root"], sort=True)`` order and the first row of
    each group; None when a key is missing (the pandas groupby, which drops such rows, is used then)."""
    exp_codes, _ = pd.factorize(f["expiry"], sort=True)
    root_codes, roots = pd.factorize(f["root"], sort=True)
    if (exp_codes < 0).any() or (root_codes < 0).any():
        return None
    uniq, gid = np.unique(exp_codes.astype(np.int64) * len(roots) + root_codes, return_inverse=True)
    gid = gid.ravel()
    first = np.full(uniq.size, -1, dtype=np.int64)
    first[gid[::-1]] = np.arange(gid.size)[::-1]
    return gid, first


def _atm_iv_by_group(gid: np.ndarray, n_groups: int, otm: np.ndarray, k: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """:func:`atm_iv_by_expiry` per group id (NaN where a side is missing), without pandas sorts and joins."""
    use = otm & np.isfinite(iv)
    g, kk, vv = gid[use], k[use], iv[use]
    out = np.full(n_groups, np.nan)
    below, above = kk < 0, kk >= 0
    if not (below.any() and above.any()):
        return out
    # nearest quote below the forward: the largest negative k; above: the smallest non-negative k
    ob = np.lexsort((kk[below], g[below]))
    gb, kb, vb = g[below][ob], kk[below][ob], vv[below][ob]
    last_b = np.r_[gb[1:] != gb[:-1], True]
    oa = np.lexsort((kk[above], g[above]))
    ga, ka, va = g[above][oa], kk[above][oa], vv[above][oa]
    first_a = np.r_[True, ga[1:] != ga[:-1]]
    lo_k, lo_v = np.full(n_groups, np.nan), np.full(n_groups, np.nan)
    hi_k, hi_v = np.full(n_groups, np.nan), np.full(n_groups, np.nan)
    lo_k[gb[last_b]], lo_v[gb[last_b]] = kb[last_b], vb[last_b]
    hi_k[ga[first_a]], hi_v[ga[first_a]] = ka[first_a], va[first_a]
    both = np.isfinite(lo_k) & np.isfinite(hi_k)
    w = (0 - lo_k[both]) / (hi_k[both] - lo_k[both])
    out[both] = lo_v[both] + w * (hi_v[both] - lo_v[both])
    return out


def enrich(
    snapshot: Snapshot,
    *,
    default_rate: float = DEFAULT_RATE,
    default_dividend_yield: float = DEFAULT_DIVIDEND_YIELD,
    valuation_time: pd.Timestamp | None = None,
    quote_ivs: bool = True,
    greeks: bool = True,
) -> EnrichedSnapshot:
    """Add t, forward, discount, bid/mid/ask IV, status and greeks to every contract.

    A pure function of one snapshot (and the optional overrides), so it can be mapped over many snapshots.

    Parameters
    ----------
    snapshot : Snapshot
        From :func:`volsurf.io.load`.
    default_rate, default_dividend_yield : float
        Used only where put-call parity cannot identify the forward or discount (see :mod:`volsurf.pricing.forwards`).
    valuation_time : Timestamp, optional
        Overrides ``snapshot.meta.valuation_time`` (e.g. to value at a later time of day).
    quote_ivs : bool
        Also solve the bid and ask IVs (``iv_bid``, ``iv_ask``); False leaves those columns out (the mid IV,
        status and ``otm`` are always there). Skew tracking needs only the mid.
    greeks : bool
        Also add ``delta``, ``gamma``, ``vega``, ``theta``; False leaves them out.
    """
    from volsurf.pricing.iv import implied_volatility_with_status

    meta = snapshot.meta
    val = meta.valuation_time if valuation_time is None else pd.Timestamp(valuation_time)
    src = snapshot.frame
    t_all = year_fraction(val, src["expiry"])
    live = t_all > 0
    removed = getattr(snapshot, "removed", None)
    warnings: list[str] = []
    if not live.all():
        # only when valuation_time is overridden past some expiry: counted and kept, never dropped silently
        gone = src.loc[~live].assign(reason="expired_at_valuation")
        removed = gone if removed is None else pd.concat([removed, gone[removed.columns.intersection(gone.columns)]],
                                                        ignore_index=True)
        meta = replace(meta, hygiene={**meta.hygiene, "expired_at_valuation": int((~live).sum())})
        warn(warnings, DataQualityWarning,
             f"{int((~live).sum())} contracts have no time left at the valuation time {val.isoformat()} "
             f"(expired_at_valuation): set aside, listed in removed")
    if not (live.all() and src.index.equals(pd.RangeIndex(len(src)))):
        base, t = src.loc[live].reset_index(drop=True), t_all[live]
    else:
        base, t = src, t_all

    # New columns are collected here and joined to the frame once (column-by-column inserts cost more).
    cols: dict[str, np.ndarray] = {}
    codes = _group_codes(base)
    fw: pd.DataFrame
    if codes is not None and codes[1].size:
        gid, first_row = codes
        keys = list(zip(base["expiry"].iloc[first_row].tolist(), base["root"].iloc[first_row].tolist(),
                        strict=True))
        pairs = _pairs_by_group(base, gid, first_row.size)
        if pairs is None:
            split = _pairs_by_key(base)
            pairs = [split.get(key) for key in keys]
        fw, s_star = _forwards_table(keys, t[first_row].tolist(), pairs, meta.spot, default_rate,
                                     default_dividend_yield)
        # fw has one row per group in group order: broadcast by group id (a merge costs more)
        fwd = fw["forward"].to_numpy()[gid]
        disc = fw["discount"].to_numpy()[gid]
        head = base
        cols.update(t=t, forward=fwd, discount=disc)
    else:
        f0 = base.copy()
        f0["t"] = t
        if codes is not None:
            t_by_expiry = pd.Series(
                t[codes[1]],
                index=pd.MultiIndex.from_arrays(
                    [f0["expiry"].iloc[codes[1]], f0["root"].iloc[codes[1]]], names=["expiry", "root"]
                ),
                name="t",
            )
        else:
            t_by_expiry = f0.groupby(["expiry", "root"], sort=True)["t"].first()
        fw = implied_forwards(f0, t_by_expiry, meta.spot, default_rate=default_rate,
                              default_dividend_yield=default_dividend_yield)
        s_star = implied_spot(fw, meta.spot)
        if codes is not None:
            f0["forward"] = fw["forward"].to_numpy()[codes[0]]
            f0["discount"] = fw["discount"].to_numpy()[codes[0]]
        else:
            f0 = f0.merge(fw[["expiry", "root", "forward", "discount"]], on=["expiry", "root"], how="left")
        head = f0
        fwd, disc = f0["forward"].to_numpy(), f0["discount"].to_numpy()
        t = f0["t"].to_numpy()

    bid, ask = head["bid"].to_numpy(), head["ask"].to_numpy()
    usable = (bid > 0) & (ask >= bid)
    mid = np.where(usable, (bid + ask) / 2, np.nan)
    cols["mid"] = mid
    k = head["strike"].to_numpy()
    is_call = (head["type"] == "call").to_numpy()

    iv_mid, st_mid = implied_volatility_with_status(mid, fwd, k, t, is_call, disc)
    if quote_ivs:
        iv_bid, _ = implied_volatility_with_status(np.where(bid > 0, bid, np.nan), fwd, k, t, is_call, disc)
        iv_ask, _ = implied_volatility_with_status(np.where(ask > 0, ask, np.nan), fwd, k, t, is_call, disc)
    status = _status_names(st_mid)
    with np.errstate(invalid="ignore"):
        status = np.where(~(bid > 0), "no_bid", np.where(bid > ask, "crossed", status))
    if quote_ivs:
        cols.update(iv_bid=iv_bid, iv_mid=iv_mid, iv_ask=iv_ask)
    else:
        cols["iv_mid"] = iv_mid
    cols["iv_status"] = status
    otm = np.where(is_call, k >= fwd, k < fwd)
    cols["otm"] = otm

    if greeks:
        spot = meta.spot
        carry = fwd / spot
        sig = np.where(np.isfinite(iv_mid), iv_mid, np.nan)
        cols["delta"] = pricing.delta(fwd, k, t, sig, is_call, disc) * carry
        cols["gamma"] = np.where(np.isfinite(sig), pricing.spot_gamma(spot, fwd, k, t, sig, disc), np.nan)
        cols["vega"] = np.where(np.isfinite(sig), pricing.vega(fwd, k, t, sig, disc) / 100.0, np.nan)
        cols["theta"] = np.where(np.isfinite(sig), pricing.theta(fwd, k, t, sig, is_call, disc) / 365.0, np.nan)
    f = pd.concat([head, pd.DataFrame(cols, index=head.index)], axis=1)

    grp_first = codes[1] if codes is not None else None
    if (grp_first is not None and grp_first.size
            and not (pd.isna(f["expiry_date"].to_numpy()[grp_first]).any()
                     or pd.isna(f["settlement"].to_numpy()[grp_first]).any())):
        with np.errstate(divide="ignore", invalid="ignore"):
            k_log = np.log(k / fwd)
        exp = pd.DataFrame({
            "expiry": fw["expiry"],
            "root": fw["root"],
            "expiry_date": f["expiry_date"].iloc[grp_first].to_numpy(),
            "settlement": f["settlement"].iloc[grp_first].to_numpy(),
            "t": fw["t"],
            "forward": fw["forward"],
            "discount": fw["discount"],
            "rate": fw["rate"],
            "dividend_yield": fw["dividend_yield"],
            "atm_iv_quotes": _atm_iv_by_group(codes[0], grp_first.size, otm, k_log, iv_mid),  # type: ignore[index]
            "method": fw["method"],
            "n_pairs": fw["n_pairs"],
            "parity_residual_max": fw["parity_residual_max"],
        })
    else:
        exp = fw.copy()
        first = f.groupby(["expiry", "root"], sort=True)[["expiry_date", "settlement"]].first()
        exp = exp.join(first, on=["expiry", "root"])
        atm = atm_iv_by_expiry(f)
        exp = exp.join(atm, on=["expiry", "root"])
        exp = exp[["expiry", "root", "expiry_date", "settlement", "t", "forward", "discount", "rate",
                   "dividend_yield", "atm_iv_quotes", "method", "n_pairs", "parity_residual_max"]]
    assumptions = {
        "valuation_time": val.isoformat(),
        "day_count": "ACT/365 on minutes from valuation time to settlement (AM 09:30, PM 16:00 New York)",
        "forward_method": "put-call parity per expiry (Theil-Sen on near-the-money pairs; see volsurf.pricing.forwards)",
        "default_rate": default_rate,
        "default_dividend_yield": default_dividend_yield,
        "greeks": "Black-76 on the implied forward from mid IV; delta/gamma per 1 point of spot",
    }
    if abs(s_star / meta.spot - 1) > STALE_SPOT_TOLERANCE:
        warn(
            warnings,
            StaleSpotWarning,
            f"the file's spot {meta.spot:g} differs from the spot implied by put-call parity {s_star:.2f} "
            f"({(s_star / meta.spot - 1) * 100:+.2f}%): the 'Last' print is probably stale",
        )
    assumptions["implied_spot"] = s_star
    return EnrichedSnapshot(frame=f, meta=meta, expiries=exp.reset_index(drop=True), assumptions=assumptions,
                            implied_spot=s_star, warnings=tuple(warnings), removed=removed)
