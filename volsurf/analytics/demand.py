"""OTM put demand: volume and open-interest shares, put/call ratios, strike concentration and their changes.

Definitions (see ``docs/skew.md``)
---------------------------------
- An **OTM put** is a put with strike below the forward of its expiry (``K < F``); where no forward is known
  the spot is used. OTM calls are calls with ``K >= F``.
- ``otm_put_volume_share = OTM put volume / (call + put volume)`` over every listed contract; likewise
  ``otm_put_oi_share`` with open interest. Shares are decimals (0.35 = 35%).
- ``put_call_volume_ratio = put volume / call volume``; ``put_call_oi_ratio`` likewise with open interest.
- The **quarter-end expiry** is an expiry whose date is the last NYSE session of its calendar quarter
  (SPXW/SPY PM options listed on that day); the nearest one on or after the trade date is singled out.
- **Concentration**: open interest summed by strike (over expiries and roots); ``top_share`` is the share of the
  ``top`` largest strikes, ``herfindahl`` is ``sum(share_i^2)`` over strikes (1 = one strike holds all OI;
  ``1 / herfindahl`` is the effective number of strikes).
- Open interest in a day's file is the OCC count from the previous night, so OI changes lag volume by a day.

Missing volume / OI (NaN) count as zero in sums; a total that is entirely missing yields NaN with a reason.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volsurf.analytics.shares import SUM_COLUMNS, share_ratios
from volsurf.errors import DataError

_NEEDED = ("expiry", "expiry_date", "strike", "type", "volume", "open_interest")


def row_forwards(frame: pd.DataFrame, forward: Any = None, spot: float | None = None) -> np.ndarray:
    """Forward for each row of ``frame``.

    ``forward`` may be an array aligned with the rows, a mapping ``expiry -> forward`` (keys: the ``expiry``
    timestamps or ``expiry_date`` strings), or None (then the frame's ``forward`` column if present). Rows left
    without a finite forward get ``spot``.
    """
    n = len(frame)
    if forward is None:
        f = frame["forward"].to_numpy(dtype=float) if "forward" in frame.columns else np.full(n, np.nan)
    elif isinstance(forward, Mapping):
        keys = list(forward.keys())
        col = "expiry_date" if keys and isinstance(keys[0], str) else "expiry"
        f = frame[col].map(forward).to_numpy(dtype=float)
    else:
        f = np.asarray(forward, dtype=float)
        if f.shape != (n,):
            raise DataError(f"forward array has shape {f.shape}, frame has {n} rows", hint="pass one forward per row")
    if spot is not None:
        f = np.where(np.isfinite(f), f, float(spot))
    return f


@dataclass(frozen=True)
class OIConcentration:
    """How concentrated open interest is across strikes.

    Attributes
    ----------
    total_oi : float
        Contracts.
    top_share : float
        Share of OI in the ``top`` largest strikes (decimal).
    herfindahl : float
        ``sum(share^2)`` over strikes.
    top_strikes : tuple of dict
        ``{strike, open_interest, share}`` for the largest strikes, largest first.
    """

    total_oi: float
    top_share: float
    herfindahl: float
    effective_strikes: float
    top_strikes: tuple[dict[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_oi": self.total_oi,
            "top_share": self.top_share,
            "herfindahl": self.herfindahl,
            "effective_strikes": self.effective_strikes,
            "top_strikes": [dict(x) for x in self.top_strikes],
        }


def oi_concentration(strikes: np.ndarray, oi: np.ndarray, top: int = 5) -> OIConcentration:
    """Concentration of open interest ``oi`` (contracts) over ``strikes`` (summed per distinct strike)."""
    k = np.asarray(strikes, dtype=float)
    w = np.nan_to_num(np.asarray(oi, dtype=float), nan=0.0)
    ks, inv = np.unique(k, return_inverse=True)
    by_strike = np.bincount(inv, weights=w, minlength=ks.size) if ks.size else np.zeros(0)
    total = float(by_strike.sum())
    if total <= 0:
        return OIConcentration(total, math.nan, math.nan, math.nan, ())
    share = by_strike / total
    order = np.argsort(-by_strike, kind="stable")[:top]
    hhi = float(np.sum(share**2))
    return OIConcentration(
        total_oi=total,
        top_share=float(share[order].sum()),
        herfindahl=hhi,
        effective_strikes=1.0 / hhi,
        top_strikes=tuple(
            {"strike": float(ks[i]), "open_interest": float(by_strike[i]), "share": float(share[i])} for i in order
        ),
    )


def quarter_end_expiry_dates(expiry_dates: np.ndarray | pd.Series) -> np.ndarray:
    """Boolean mask: expiry date is the last NYSE session of its calendar quarter."""
    from volsurf.market.calendar import date_days, period_end_sessions

    d = date_days(expiry_dates)
    if d.size == 0:
        return np.zeros(0, dtype=bool)
    return period_end_sessions(d, "quarter") == d




_SUM_COLS = SUM_COLUMNS


def _with_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (holding the ``_SUM_COLS`` sums) with the :func:`share_ratios` columns added."""
    return df.assign(**share_ratios({c: df[c].to_numpy(dtype=float) for c in _SUM_COLS}))


@dataclass(frozen=True, eq=False)
class DemandMetrics:
    """OTM put demand of one snapshot (volumes and OI in contracts, shares and ratios decimal).

    ``by_expiry`` has one row per expiry date with the same sums, shares and ratios plus ``is_quarter_end``;
    ``quarter_end`` is the row of the nearest quarter-end expiry (None with ``quarter_end_reason`` if none is
    listed). ``concentration`` holds :class:`OIConcentration` for ``all`` OI, ``puts`` and the quarter-end
    expiry's puts.
    """

    call_volume: float
    put_volume: float
    otm_put_volume: float
    call_oi: float
    put_oi: float
    otm_put_oi: float
    otm_put_volume_share: float
    otm_put_oi_share: float
    put_call_volume_ratio: float
    put_call_oi_ratio: float
    by_expiry: pd.DataFrame
    quarter_end: dict[str, Any] | None
    quarter_end_reason: str | None
    concentration: dict[str, OIConcentration]
    forward_source: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def headline(self) -> dict[str, float]:
        """The snapshot-level sums, shares and ratios as a flat dict."""
        return {c: getattr(self, c) for c in (*_SUM_COLS, *SHARE_FIELDS)}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.headline())
        out["quarter_end_expiry"] = self.quarter_end
        out["quarter_end_reason"] = self.quarter_end_reason
        out["by_expiry"] = self.by_expiry.to_dict(orient="records")
        out["oi_concentration"] = {k: v.to_dict() for k, v in self.concentration.items()}
        out["forward_source"] = self.forward_source
        out["notes"] = list(self.notes)
        return out


SHARE_FIELDS: tuple[str, ...] = ("otm_put_volume_share", "otm_put_oi_share", "put_call_volume_ratio", "put_call_oi_ratio")


def otm_put_demand(
    frame: pd.DataFrame,
    forward: Any = None,
    spot: float | None = None,
    trade_date: dt.date | None = None,
    top: int = 5,
) -> DemandMetrics:
    """OTM put shares, put/call ratios, per-expiry breakdown and OI concentration of one chain.

    Parameters
    ----------
    frame : DataFrame
        Snapshot frame (schema in :mod:`volsurf.market.snapshot`; an enriched frame works too).
    forward : array, mapping or None
        Forward per row or per expiry (see :func:`row_forwards`); None uses the frame's ``forward`` column.
    spot : float, optional
        Fallback where no forward is known.
    trade_date : date, optional
        Quarter-end expiries before it are ignored when singling out the nearest one.
    top : int
        Number of strikes in the concentration's ``top_share``.
    """
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise DataError(f"chain frame lacks columns {missing}", hint="pass a Snapshot.frame from volsurf.io.load")
    if len(frame) == 0:
        raise DataError("chain has no contracts", hint="check the file and its expiry filter")
    notes: list[str] = []
    f = row_forwards(frame, forward, spot)
    if forward is None and "forward" in frame.columns:
        source = "enriched forward per expiry"
    elif forward is not None:
        source = "given forwards"
    else:
        source = "spot"
    n_no_fwd = int(np.sum(~np.isfinite(f)))
    if n_no_fwd:
        notes.append(f"{n_no_fwd} rows without forward or spot are not classified OTM")
    strike = frame["strike"].to_numpy(dtype=float)
    is_put = (frame["type"] == "put").to_numpy()
    vol = np.nan_to_num(frame["volume"].to_numpy(dtype=float), nan=0.0)
    oi = np.nan_to_num(frame["open_interest"].to_numpy(dtype=float), nan=0.0)
    with np.errstate(invalid="ignore"):
        otm_put = is_put & (strike < f)
    sums = {
        "call_volume": np.where(is_put, 0.0, vol),
        "put_volume": np.where(is_put, vol, 0.0),
        "otm_put_volume": np.where(otm_put, vol, 0.0),
        "call_oi": np.where(is_put, 0.0, oi),
        "put_oi": np.where(is_put, oi, 0.0),
        "otm_put_oi": np.where(otm_put, oi, 0.0),
    }
    # Integer codes + bincount: far faster than a pandas groupby on string dates.
    codes, dates = pd.factorize(frame["expiry_date"].astype(str), sort=True)
    dates_obj = np.asarray(dates, dtype=object)
    vol_missing = bool(frame["volume"].isna().all())
    oi_missing = bool(frame["open_interest"].isna().all())
    if vol_missing:
        notes.append("volume missing in the whole file: volume shares and ratios unavailable")
    if oi_missing:
        notes.append("open interest missing in the whole file: OI shares and ratios unavailable")
    by_sums = {name: np.bincount(codes, weights=v, minlength=len(dates)) for name, v in sums.items()}
    is_qe = quarter_end_expiry_dates(dates_obj)
    # built in one go (the same frame as column inserts and share_ratios)
    by_exp = pd.DataFrame({"expiry_date": dates_obj, **by_sums, **share_ratios(by_sums), "is_quarter_end": is_qe})
    tot_sums = {k: np.array([float(v.sum())]) for k, v in sums.items()}
    totals = {k: float(v[0]) for k, v in {**tot_sums, **share_ratios(tot_sums)}.items()}
    if vol_missing:
        for c in ("otm_put_volume_share", "put_call_volume_ratio"):
            totals[c] = math.nan
    if oi_missing:
        for c in ("otm_put_oi_share", "put_call_oi_ratio"):
            totals[c] = math.nan

    qe_idx = np.flatnonzero(is_qe)
    if trade_date is not None:
        day = pd.Timestamp(trade_date).date().isoformat()
        qe_idx = qe_idx[np.asarray(by_exp["expiry_date"].iloc[qe_idx] >= day, dtype=bool)]
    quarter_end = None
    qe_reason = None
    qe_code = None
    if qe_idx.size:
        qe_code = int(qe_idx[0])
        quarter_end = {str(k): (v.item() if hasattr(v, "item") else v)
                       for k, v in by_exp.iloc[qe_code].to_dict().items()}
    else:
        qe_reason = "no quarter-end expiry (last session of a quarter) listed in the file"

    concentration = {
        "all": oi_concentration(strike, oi, top),
        "puts": oi_concentration(strike[is_put], oi[is_put], top),
    }
    if qe_code is not None:
        m = is_put & (codes == qe_code)
        concentration["quarter_end_puts"] = oi_concentration(strike[m], oi[m], top)
    return DemandMetrics(
        call_volume=float(totals["call_volume"]),
        put_volume=float(totals["put_volume"]),
        otm_put_volume=float(totals["otm_put_volume"]),
        call_oi=float(totals["call_oi"]),
        put_oi=float(totals["put_oi"]),
        otm_put_oi=float(totals["otm_put_oi"]),
        otm_put_volume_share=float(totals["otm_put_volume_share"]),
        otm_put_oi_share=float(totals["otm_put_oi_share"]),
        put_call_volume_ratio=float(totals["put_call_volume_ratio"]),
        put_call_oi_ratio=float(totals["put_call_oi_ratio"]),
        by_expiry=by_exp,
        quarter_end=quarter_end,
        quarter_end_reason=qe_reason,
        concentration=concentration,
        forward_source=source,
        notes=tuple(notes),
    )


@dataclass(frozen=True, eq=False)
class DemandChange:
    """Change from a previous snapshot to the current one (current minus previous).

    ``totals`` holds the change of each sum (contracts) and of each share/ratio (decimal: 0.01 = 1 point of
    share). ``by_expiry`` has the same per expiry date listed in both snapshots; ``quarter_end`` for the
    current snapshot's quarter-end expiry (None if it is not in both). ``like_for_like`` holds the change of
    each share and ratio recomputed over the expiries listed in both snapshots only, so that an expiry rolling
    off (or a new listing) does not move the shares mechanically. ``top_put_oi_increases`` lists the put
    strikes whose OI rose most (needs both frames).
    """

    totals: dict[str, float]
    like_for_like: dict[str, float]
    by_expiry: pd.DataFrame
    quarter_end: dict[str, Any] | None
    top_put_oi_increases: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "totals": dict(self.totals),
            "like_for_like": dict(self.like_for_like),
            "quarter_end_expiry": self.quarter_end,
            "by_expiry": self.by_expiry.to_dict(orient="records"),
            "top_put_oi_increases": [dict(x) for x in self.top_put_oi_increases],
            "notes": list(self.notes),
        }


_CHANGE_COLS = (*_SUM_COLS, *SHARE_FIELDS)


def demand_change(
    current: DemandMetrics,
    previous: DemandMetrics,
    current_frame: pd.DataFrame | None = None,
    previous_frame: pd.DataFrame | None = None,
    top: int = 10,
) -> DemandChange:
    """Change in OI, volume, shares and ratios from ``previous`` to ``current`` (same underlying).

    Expiries are matched by date; expiries that expired or were listed in between are left out of
    ``by_expiry`` (their OI still counts in the totals). With both frames, put OI changes are also matched
    contract by contract (on ``contract`` id) and the largest increases by strike returned.
    """
    totals = {c: getattr(current, c) - getattr(previous, c) for c in _CHANGE_COLS}
    cols = ["expiry_date", *_CHANGE_COLS]
    merged = current.by_expiry[[*cols, "is_quarter_end"]].merge(
        previous.by_expiry[cols], on="expiry_date", suffixes=("", "_prev"), how="inner"
    )
    by_exp = pd.DataFrame({"expiry_date": merged["expiry_date"], "is_quarter_end": merged["is_quarter_end"]})
    for c in _CHANGE_COLS:
        by_exp[c] = merged[c] - merged[f"{c}_prev"]
    cur_sums = merged[list(_SUM_COLS)].sum().to_frame().T
    prev_sums = merged[[f"{c}_prev" for c in _SUM_COLS]].sum().to_frame().T
    prev_sums.columns = list(_SUM_COLS)
    cur_r, prev_r = _with_ratios(cur_sums).iloc[0], _with_ratios(prev_sums).iloc[0]
    lfl = {c: float(cur_r[c] - prev_r[c]) for c in SHARE_FIELDS}
    lfl["common_expiries"] = float(len(merged))
    qe = None
    if current.quarter_end is not None:
        row = by_exp[by_exp["expiry_date"] == current.quarter_end["expiry_date"]]
        if len(row):
            qe = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.iloc[0].to_dict().items()}
    notes = []
    n_new = len(current.by_expiry) - len(merged)
    if n_new:
        notes.append(f"{n_new} expiries of the current snapshot are not in the previous one")
    increases: tuple[dict[str, Any], ...] = ()
    if current_frame is not None and previous_frame is not None:
        increases = _top_put_oi_increases(current_frame, previous_frame, top)
    return DemandChange(totals, lfl, by_exp, qe, increases, tuple(notes))


def _top_put_oi_increases(cur: pd.DataFrame, prev: pd.DataFrame, top: int) -> tuple[dict[str, Any], ...]:
    """Put strikes with the largest OI increase, contracts matched by id and summed per (expiry date, strike)."""
    keep = ["contract", "expiry_date", "strike", "open_interest"]
    c = cur.loc[cur["type"] == "put", keep]
    p = prev.loc[prev["type"] == "put", ["contract", "open_interest"]]
    m = c.merge(p, on="contract", how="left", suffixes=("", "_prev"))
    m["oi_change"] = m["open_interest"].fillna(0.0) - m["open_interest_prev"].fillna(0.0)
    g = m.groupby(["expiry_date", "strike"], sort=False)["oi_change"].sum().reset_index()
    g = g[g["oi_change"] > 0].nlargest(top, "oi_change")
    return tuple(
        {"expiry_date": str(e), "strike": float(k), "oi_change": float(c)}
        for e, k, c in zip(g["expiry_date"], g["strike"].to_numpy(float), g["oi_change"].to_numpy(float), strict=True)
    )
