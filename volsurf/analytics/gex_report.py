"""GEX report on an enriched snapshot: the :class:`GexReport` assembled in named steps, and the robustness
scenarios (dealer assumption x bid/mid/ask IV x 0DTE timing).

Steps of :func:`gex_report`: select the expiries (:func:`_select`), gather the contracts' arrays
(:func:`_contracts`), exposures at spot (:func:`_exposures`), open-interest coverage (:func:`_coverage`), the
vendor-gamma comparison (:func:`_vendor_comparison`), strike table, walls and buckets (:func:`_tables`), the
profile and the gamma flip (:func:`_profile`), the optional later-time profile (:func:`_later_profile`) and the
robustness scenarios (:func:`_robustness_summary`). Units and the profile model: :mod:`volsurf.analytics.gex`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from volsurf.analytics.gex import (
    ASSUMPTIONS,
    DEFAULT_ASSUMPTION,
    ONE_BUSINESS_DAY,
    UNITS,
    ContractGreeks,
    DealerAssumption,
    FlipResult,
    ProfileModel,
    Walls,
    by_strike,
    charm_exposure,
    delta_exposure,
    expiry_buckets,
    find_gamma_flip,
    find_walls,
    floor_time,
    gamma_exposure,
    get_assumption,
    parse_expiry_selection,
    spot_gamma,
    spot_greeks,
    spot_grid,
    strike_totals,
    strike_walls,
    vanna_exposure,
    walls_from_totals,
)
from volsurf.errors import DataError, ParameterError
from volsurf.units import MINUTES_PER_YEAR, NY

VolFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def surface_vol(surface: Any) -> VolFunction:
    """Vectorized sticky-strike vol from a fitted surface with a scalar-time ``iv(strike, t)`` query
    (:class:`volsurf.surface.fit.Surface`): one query per distinct time, not per option.

    Options with ``t <= 0`` (or a query the surface refuses) get NaN and are left out of the profile.
    """
    from volsurf.errors import VolsurfError

    def vol(strike: np.ndarray, t: np.ndarray) -> np.ndarray:
        k = np.asarray(strike, dtype=float)
        tt = np.asarray(t, dtype=float)
        out = np.full(k.shape, np.nan)
        ok = np.isfinite(tt) & (tt > 0) & np.isfinite(k) & (k > 0)
        uniq, inv = np.unique(tt[ok], return_inverse=True)
        idx = np.flatnonzero(ok)
        for j, tj in enumerate(uniq):  # a loop over expiries (tens), not options
            rows = idx[inv == j]
            try:
                out[rows] = np.asarray(surface.iv(k[rows], float(tj)), dtype=float)
            except VolsurfError:
                continue
        return out

    return vol




@dataclass(frozen=True)
class Scenario:
    """One robustness scenario: net GEX at spot (USD per 1%) and flip under an assumption/vol/timing choice."""

    assumption: str
    vol: str
    timing: str
    net_gex: float
    gamma_flip: float | None
    crossings: tuple[float, ...] = ()
    walls: Walls | None = None


@dataclass(frozen=True)
class GexReport:
    """Everything ``volsurf gex`` prints; :meth:`to_dict` is the JSON form (dollars per 1% move)."""

    underlying: str
    trade_date: dt.date
    valuation_time: pd.Timestamp
    spot: float
    assumption: DealerAssumption
    vol_model: str
    expiries: tuple[str, ...]
    totals: dict[str, float]
    vendor: dict[str, Any]
    by_strike: pd.DataFrame
    by_bucket: pd.DataFrame
    walls: Walls
    walls_by_bucket: dict[str, Walls]
    profile_spots: np.ndarray
    profile_net: np.ndarray
    profile_by_bucket: dict[str, np.ndarray]
    flip: FlipResult
    scenarios: tuple[Scenario, ...]
    gamma_flip_range: tuple[float, float] | None
    regime_robust: bool | None
    coverage: dict[str, float]
    profile_time: pd.Timestamp | None = None
    profile_later: np.ndarray | None = None
    flip_later: FlipResult | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    file_spot: float | None = None
    spot_source: str = "file"
    unavailable_reason: str | None = None

    @property
    def net_gex(self) -> float:
        """Net GEX at spot, USD per 1% move."""
        return self.totals["net_gex"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None by :func:`volsurf.cli.output.to_jsonable`)."""
        w = self.walls
        out: dict[str, Any] = {
            "underlying": self.underlying,
            "trade_date": self.trade_date.isoformat(),
            "valuation_time": self.valuation_time.isoformat(),
            "spot": self.spot,
            "spot_source": self.spot_source,
            "file_spot": self.file_spot if self.file_spot is not None else self.spot,
            "net_gex_unavailable_reason": self.unavailable_reason,
            "assumption": self.assumption.name,
            "assumption_description": self.assumption.description,
            "vol_model": self.vol_model,
            "expiries": list(self.expiries),
            "units": UNITS,
            **self.totals,
            "gamma_flip": self.flip.flip,
            "gamma_flip_reason": self.flip.reason,
            "gamma_flip_crossings": list(self.flip.crossings),
            "gamma_flip_range": list(self.gamma_flip_range) if self.gamma_flip_range else None,
            "regime_robust": self.regime_robust,
            "call_wall": w.call_wall,
            "put_wall": w.put_wall,
            "largest_abs_gex_strike": w.largest_abs_gex_strike,
            "walls": _walls_dict(w),
            "walls_by_bucket": {k: _walls_dict(v) for k, v in self.walls_by_bucket.items()},
            "vendor_gamma_comparison": self.vendor,
            "coverage": self.coverage,
            "by_bucket": self.by_bucket.to_dict(orient="records"),
            "by_strike": self.by_strike.to_dict(orient="records"),
            "profile": [{"spot": s, "net_gex": g} for s, g in zip(self.profile_spots, self.profile_net, strict=True)],
            "profile_by_bucket": {
                b: [{"spot": s, "net_gex": g} for s, g in zip(self.profile_spots, v, strict=True)]
                for b, v in self.profile_by_bucket.items()
            },
            "robustness": [
                {
                    "assumption": s.assumption,
                    "vol": s.vol,
                    "timing": s.timing,
                    "net_gex": s.net_gex,
                    "gamma_flip": s.gamma_flip,
                    "crossings": list(s.crossings),
                    **(_walls_dict(s.walls) if s.walls is not None else {}),
                }
                for s in self.scenarios
            ],
            "by_assumption": [
                {
                    "assumption": s.assumption,
                    "description": ASSUMPTIONS[s.assumption].description,
                    "net_gex": s.net_gex,
                    "gamma_flip": s.gamma_flip,
                    **(_walls_dict(s.walls) if s.walls is not None else {}),
                }
                for s in self.scenarios
                if s.vol == "mid" and s.timing == "exact"
            ],
            "notes": list(self.notes),
        }
        if self.profile_later is not None and self.profile_time is not None and self.flip_later is not None:
            out["profile_later"] = {
                "valuation_time": self.profile_time.isoformat(),
                "gamma_flip": self.flip_later.flip,
                "gamma_flip_reason": self.flip_later.reason,
                "profile": [
                    {"spot": s, "net_gex": g} for s, g in zip(self.profile_spots, self.profile_later, strict=True)
                ],
            }
        return out


def _walls_dict(w: Walls) -> dict[str, float | None]:
    return {
        "call_wall": w.call_wall,
        "call_wall_gex": w.call_wall_gex,
        "put_wall": w.put_wall,
        "put_wall_gex": w.put_wall_gex,
        "largest_abs_gex_strike": w.largest_abs_gex_strike,
        "largest_abs_gex": w.largest_abs_gex,
    }


def _column(frame: pd.DataFrame, name: str, default: float = np.nan) -> np.ndarray:
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    return np.full(len(frame), default)


def fill_from_pair(frame: pd.DataFrame, iv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing IVs with the IV of the other type at the same (root, expiry, strike).

    Put-call parity gives a call and a put on the same strike the same Black vol, so the liquid (usually OTM)
    side stands in for an ITM quote that has no bid or trades below intrinsic. Returns the filled IVs and the
    source per row: ``own``, ``pair`` or ``none``.
    """
    iv = np.asarray(iv, dtype=float)
    ok = np.isfinite(iv) & (iv > 0)
    keys = [c for c in ("root", "expiry_date", "strike") if c in frame.columns]
    source = np.where(ok, "own", "none").astype(object)
    if ok.all() or "type" not in frame.columns or not keys:
        return iv, source
    is_call = (frame["type"].astype(str).str.lower() == "call").to_numpy(bool)
    code = np.zeros(len(frame), dtype=np.int64)
    for c in keys:  # one integer per (root, expiry, strike); a missing key value is a value of its own
        codes, uniq = pd.factorize(frame[c], use_na_sentinel=False)
        code = code * (len(uniq) + 1) + codes
    # The pair of a row is the first row with the same keys and the other type.
    own_key = 2 * code + is_call
    uniq_key, first = np.unique(own_key, return_index=True)
    pair_key = 2 * code + ~is_call
    pos = np.minimum(np.searchsorted(uniq_key, pair_key), uniq_key.size - 1)
    own_iv = np.where(ok, iv, np.nan)
    pair_iv = np.where(uniq_key[pos] == pair_key, own_iv[first[pos]], np.nan)
    use = ~ok & np.isfinite(pair_iv)
    source[use] = "pair"
    return np.where(use, pair_iv, iv), source


def end_of_day(valuation_time: pd.Timestamp) -> pd.Timestamp:
    """The next session close at or after ``valuation_time`` strictly later than it (early closes respected).

    During a session: that session's close. After the close, on weekends or holidays: the next session's close.
    """
    from volsurf.market.calendar import nyse

    cal = nyse()
    ts = pd.Timestamp(valuation_time)
    ts = ts.tz_localize(NY) if ts.tzinfo is None else ts
    session = cal.date_to_session(ts.tz_convert(NY).tz_localize(None).normalize(), direction="next")
    close = cal.session_close(session)
    if close <= ts:
        close = cal.session_close(cal.next_session(session))
    return close.tz_convert(NY)


@dataclass(frozen=True)
class _Contracts:
    """The selected contracts as arrays (one entry per row of ``frame``)."""

    frame: pd.DataFrame
    buckets: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    oi: np.ndarray
    mult: np.ndarray
    t: np.ndarray
    fwd: np.ndarray
    disc: np.ndarray
    iv_source: np.ndarray
    sigma: np.ndarray
    sign: np.ndarray


@dataclass(frozen=True)
class _Exposures:
    """Greeks at spot, which contracts are usable, and the per-contract exposures."""

    greeks: ContractGreeks
    usable: np.ndarray
    gex: np.ndarray
    dex: np.ndarray
    totals: dict[str, float]


@dataclass(frozen=True)
class _Profile:
    """The profile grid, the net profile, its split by bucket and the gamma flip."""

    grid: np.ndarray
    net: np.ndarray
    by_bucket: dict[str, np.ndarray]
    flip: FlipResult
    weights: np.ndarray


@dataclass(frozen=True)
class _Later:
    """Profile at a later valuation time (all None when not asked for)."""

    time: pd.Timestamp | None = None
    profile: np.ndarray | None = None
    flip: FlipResult | None = None


def choose_spot(file_spot: float, implied: float) -> tuple[float, str]:
    """The spot GEX uses, and its source.

    The file's spot, unless it is stale against the spot implied by put-call parity (relative gap above
    :data:`volsurf.pricing.enrich.STALE_SPOT_TOLERANCE`, the StaleSpotWarning of enrich): then the implied spot,
    which is the level the option prices (and the forwards, hence ``dF/dS = F / S``) refer to. One spot serves
    the exposures at spot, the profile grid and ``dF/dS``.

    Raises
    ------
    DataError
        The file's spot is zero, negative or not finite.
    """
    from volsurf.pricing.enrich import STALE_SPOT_TOLERANCE

    if not (math.isfinite(file_spot) and file_spot > 0):
        raise DataError(f"spot {file_spot} is not a positive number", hint="check the file's header line (Last)")
    if math.isfinite(implied) and implied > 0 and abs(implied / file_spot - 1.0) > STALE_SPOT_TOLERANCE:
        return implied, "implied (put-call parity; the file's Last is stale)"
    return file_spot, "file"


def _oi_unavailable(c: _Contracts) -> str | None:
    """Why net GEX cannot be computed (no contract with a positive open interest), or None."""
    oi_raw = _column(c.frame, "open_interest")
    if np.any(c.oi > 0):
        return None
    if not np.any(np.isfinite(oi_raw)):
        flags = c.frame["flags"].astype(str) if "flags" in c.frame else None
        if flags is not None and flags.str.contains("bad_oi", regex=False).any():
            return ("no usable open interest: every value was set aside by the bad_oi hygiene rule (negative, "
                    "non-finite or implausibly large): dealer positions unknown")
        return "the file has no open interest (e.g. OptionsDX exports carry none): dealer positions unknown"
    return "no contract has a positive open interest: dealer positions unknown"


def _select(frame: pd.DataFrame, trade_date: dt.date, selected: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of the selected expiry buckets and their bucket names."""
    buckets_all = expiry_buckets(frame["expiry_date"], trade_date)
    in_sel = np.isin(buckets_all, np.array(selected, dtype=object))
    f = frame.loc[in_sel]
    if len(f) == 0:
        raise DataError(
            f"no contracts in the selected expiries ({', '.join(selected)})",
            hint="use --expiries all or another bucket",
        )
    return f, buckets_all[in_sel]


def _contracts(f: pd.DataFrame, buckets: np.ndarray, ass: DealerAssumption, vol: VolFunction | None,
               multiplier: float) -> _Contracts:
    """Strike, type, open interest, multiplier, timing, carry, vol and dealer sign of every selected contract."""
    strike = _column(f, "strike")
    is_call = (f["type"].astype(str).str.lower() == "call").to_numpy()
    oi = np.nan_to_num(_column(f, "open_interest"), nan=0.0)
    oi = np.where(oi > 0, oi, 0.0)
    mult = _column(f, "multiplier", multiplier)
    mult = np.where(np.isfinite(mult) & (mult > 0), mult, multiplier)
    t = _column(f, "t")
    fwd = _column(f, "forward")
    disc = np.nan_to_num(_column(f, "discount", 1.0), nan=1.0)
    iv_own = _column(f, "iv_mid")
    iv_mid, iv_source = fill_from_pair(f, iv_own)
    sigma = np.asarray(vol(strike, t), dtype=float) if vol is not None else iv_mid
    return _Contracts(frame=f, buckets=buckets, strike=strike, is_call=is_call, oi=oi, mult=mult, t=t, fwd=fwd,
                      disc=disc, iv_source=iv_source, sigma=sigma, sign=ass.signs(is_call))


def _exposures(c: _Contracts, spot: float) -> _Exposures:
    """Greeks at spot and the dealer exposures (GEX, DEX, vanna, charm) with their totals."""
    greeks = spot_greeks(spot, c.fwd, c.strike, c.t, c.sigma, c.is_call, c.disc)
    usable = np.isfinite(c.sigma) & (c.sigma > 0) & np.isfinite(c.t) & (c.t > 0) & np.isfinite(c.fwd)
    gex = gamma_exposure(greeks.gamma, c.oi, spot, c.mult, c.sign)
    dex = delta_exposure(greeks.delta, c.oi, spot, c.mult, c.sign)
    vanna_x = vanna_exposure(greeks.vanna, c.oi, spot, c.mult, c.sign)
    charm_x = charm_exposure(greeks.charm, c.oi, spot, c.mult, c.sign)
    totals = {
        "net_gex": float(gex.sum()),
        "call_gex": float(gex[c.is_call].sum()),
        "put_gex": float(gex[~c.is_call].sum()),
        "gross_gex": float(np.abs(gex).sum()),
        "dex": float(dex.sum()),
        "vanna_exposure": float(vanna_x.sum()),
        "charm_exposure": float(charm_x.sum()),
    }
    return _Exposures(greeks=greeks, usable=usable, gex=gex, dex=dex, totals=totals)


def _coverage(c: _Contracts, usable: np.ndarray, vol: VolFunction | None) -> dict[str, float]:
    """Open interest covered by a usable IV."""
    oi = c.oi
    oi_total = float(oi.sum())
    oi_missing = float(oi[(oi > 0) & ~usable].sum())
    return {
        "contracts": len(c.frame),
        "contracts_with_oi": int(np.count_nonzero(oi > 0)),
        "contracts_missing_oi": int(np.count_nonzero(~np.isfinite(_column(c.frame, "open_interest")))),
        "open_interest": oi_total,
        "open_interest_without_iv": oi_missing,
        "open_interest_without_iv_fraction": oi_missing / oi_total if oi_total > 0 else 0.0,
        "open_interest_iv_from_pair": float(oi[c.iv_source == "pair"].sum()) if vol is None else 0.0,
    }


def _vendor_comparison(c: _Contracts, x: _Exposures, spot: float) -> dict[str, Any]:
    """The same formula with the file's (rounded) gamma column."""
    vg = _column(c.frame, "vendor_gamma")
    has_vg = np.isfinite(vg)
    vendor_gex = gamma_exposure(np.where(has_vg, vg, 0.0), c.oi, spot, c.mult, c.sign)
    vnet = float(vendor_gex.sum())
    rounded_zero = has_vg & (vg == 0) & (x.greeks.gamma > 0) & (c.oi > 0)
    net = x.totals["net_gex"]
    return {
        "available": bool(np.any(has_vg & (c.oi > 0))),
        "net_gex_vendor": vnet if np.any(has_vg) else None,
        "call_gex_vendor": float(vendor_gex[c.is_call].sum()) if np.any(has_vg) else None,
        "put_gex_vendor": float(vendor_gex[~c.is_call].sum()) if np.any(has_vg) else None,
        "difference": net - vnet if np.any(has_vg) else None,
        "relative_difference": (net - vnet) / abs(vnet) if np.any(has_vg) and vnet != 0 else None,
        "rows_vendor_gamma_zero_with_oi": int(np.count_nonzero(rounded_zero)),
        "gex_of_those_rows": float(x.gex[rounded_zero].sum()),
    }


def _tables(c: _Contracts, x: _Exposures, selected: tuple[str, ...]
            ) -> tuple[pd.DataFrame, Walls, dict[str, Walls], pd.DataFrame]:
    """GEX by strike, the walls (overall and per bucket) and the per-bucket totals."""
    strike, is_call, buckets, gex = c.strike, c.is_call, c.buckets, x.gex
    table = by_strike(strike, is_call, gex)
    walls = find_walls(table)
    walls_by_bucket = {b: strike_walls(strike[buckets == b], is_call[buckets == b], gex[buckets == b])
                       for b in selected if np.any(buckets == b)}
    bucket_rows = []
    expiry_code = pd.factorize(c.frame["expiry_date"], use_na_sentinel=False)[0]
    for b in selected:
        m = buckets == b
        bucket_rows.append({
            "bucket": b,
            "expiries": int(np.unique(expiry_code[m]).size),
            "contracts": int(np.count_nonzero(m)),
            "open_interest": float(c.oi[m].sum()),
            "call_gex": float(gex[m & is_call].sum()),
            "put_gex": float(gex[m & ~is_call].sum()),
            "net_gex": float(gex[m].sum()),
            "dex": float(x.dex[m].sum()),
        })
    return table, walls, walls_by_bucket, pd.DataFrame(bucket_rows)


def _profile(c: _Contracts, spot: float, selected: tuple[str, ...], width: float, n_points: int,
             bucket_profiles: bool) -> _Profile:
    """Profile over the spot grid: one pass for the chosen assumption, split by bucket in the same pass."""
    buckets = c.buckets
    grid = spot_grid(spot, width, n_points)
    weights = c.sign * c.oi * c.mult
    present = [b for b in selected if np.any(buckets == b)] if bucket_profiles else []
    # One column per bucket: the net profile is their sum, so the split costs nothing extra.
    cols = np.column_stack([np.where(buckets == b, weights, 0.0) for b in present]) if present else weights
    model = ProfileModel.build(spot, c.fwd, c.strike, c.t, c.sigma, c.disc, cols)
    prof = model.evaluate(grid)
    if present:
        profile_by_bucket = {b: prof[:, j] for j, b in enumerate(present)}
        profile_net = prof.sum(axis=1)
        ones = np.ones(len(present))
    else:
        profile_by_bucket, profile_net, ones = {}, prof, None
    flip = find_gamma_flip(lambda s: model.value(s, ones), grid, profile_net, spot)
    return _Profile(grid=grid, net=profile_net, by_bucket=profile_by_bucket, flip=flip, weights=weights)


def _later_profile(c: _Contracts, spot: float, valuation_time: pd.Timestamp, later_time: pd.Timestamp | str,
                   vol: VolFunction | None, prof: _Profile) -> _Later:
    """Profile at a later valuation time: same grid, ``t`` shortened, expired options dropped."""
    t, disc, strike = c.t, c.disc, c.strike
    profile_time = end_of_day(valuation_time) if str(later_time) == "eod" else pd.Timestamp(later_time)
    dt_years = (profile_time - valuation_time).total_seconds() / 60.0 / MINUTES_PER_YEAR
    if dt_years < 0:
        raise ParameterError("later valuation time is before the snapshot's valuation time")
    t2 = t - dt_years
    with np.errstate(divide="ignore", invalid="ignore"):
        # Rate held fixed: D(t') = D(t)^(t'/t).
        disc2 = np.where(t2 > 0, disc ** (np.clip(t2, 0, None) / np.where(t > 0, t, 1.0)), 1.0)
    sigma2 = np.asarray(vol(strike, np.clip(t2, 1e-12, None)), dtype=float) if vol is not None else c.sigma
    model2 = ProfileModel.build(spot, c.fwd, strike, np.where(t2 > 0, t2, np.nan), sigma2, disc2, prof.weights)
    profile_later = model2.evaluate(prof.grid)
    flip_later = find_gamma_flip(model2.value, prof.grid, profile_later, spot)
    return _Later(time=profile_time, profile=profile_later, flip=flip_later)


def _robustness_summary(c: _Contracts, spot: float, ass: DealerAssumption, width: float, n_points: int,
                        vol: VolFunction | None) -> tuple[list[Scenario], tuple[float, float] | None, bool]:
    """Scenarios, the flip range and whether the regime (sign of net GEX) is robust, for the chosen assumption.

    Range and regime are taken over the data/model variants (bid/mid/ask IV, 0DTE timing) of the chosen
    assumption: across assumptions the question is degenerate (an assumption and its opposite negate every
    figure, and dealer_short_all / dealer_long_all fix the sign), so those are reported per assumption instead.
    """
    # A coarser grid is enough here: it only brackets the crossings, which brentq then refines exactly.
    rgrid = spot_grid(spot, width, min(int(n_points), 101))
    scenarios = _robustness(spot, rgrid, c.fwd, c.strike, c.t, c.disc, c.oi * c.mult, c.is_call, c.frame, c.sigma,
                            vol)
    mine = [s for s in scenarios if s.assumption == ass.name]
    flips = [s.gamma_flip for s in mine if s.gamma_flip is not None]
    flip_range = (min(flips), max(flips)) if flips else None
    regime = len({float(np.sign(s.net_gex)) for s in mine}) == 1
    return scenarios, flip_range, regime


def _notes(vol: VolFunction | None, coverage: dict[str, float]) -> list[str]:
    """Plain-text notes on the vol model and the coverage."""
    notes: list[str] = []
    if vol is None:
        notes.append(
            "vol sticky-strike, flat per option: each option keeps its mid IV at every spot; an option without a "
            "mid IV (no bid, quote below intrinsic) takes the mid IV of the other type at the same root, expiry "
            "and strike (equal by put-call parity)"
        )
    if coverage["open_interest_without_iv"] > 0:
        notes.append(
            f"{coverage['open_interest_without_iv_fraction']:.1%} of open interest has no usable IV and is left out"
        )
    return notes


def gex_report(
    enriched: Any,
    *,
    assumption: str | DealerAssumption = DEFAULT_ASSUMPTION,
    expiries: str | Sequence[str] | None = "all",
    vol: VolFunction | None = None,
    width: float = 0.15,
    n_points: int = 401,
    multiplier: float = 100.0,
    later_time: pd.Timestamp | str | None = None,
    robustness: bool = True,
    bucket_profiles: bool = True,
) -> GexReport:
    """Dealer gamma exposure report for an enriched snapshot (:func:`volsurf.pricing.enrich.enrich`).

    Parameters
    ----------
    enriched : EnrichedSnapshot
        ``frame`` with strike, type, expiry_date, open_interest, t (years), forward, discount, iv_bid/mid/ask
        (decimal), vendor_gamma; ``meta`` with spot, trade_date, valuation_time, underlying.
    assumption : str
        Dealer positioning, a key of :data:`ASSUMPTIONS`.
    expiries : str
        ``all`` or a comma list of :data:`BUCKETS`; applies to every figure, the profile and the walls.
    vol : callable, optional
        Sticky-strike vol ``vol(strike, t) -> decimal vol`` (e.g. a fitted ``Surface.iv``). Default: each
        option keeps its own mid IV (flat per option); options without a mid IV are then left out.
    width, n_points : float, int
        Profile grid: ``spot * (1 +/- width)`` with ``n_points`` points.
    multiplier : float
        Contract multiplier when the frame has no ``multiplier`` column (100 for SPX/SPY/NDX/XSP).
    later_time : Timestamp or ``"eod"``, optional
        Also compute the profile at this later valuation time (``"eod"``: the next session close).
    robustness : bool
        Recompute net GEX and the flip under every assumption x {mid, bid, ask} IV (x 0DTE timing when some
        expiry is under one business day away).
    """
    ass = get_assumption(assumption)
    selected = parse_expiry_selection(expiries)
    meta = enriched.meta
    file_spot = float(meta.spot)
    spot, spot_source = choose_spot(file_spot, float(getattr(enriched, "implied_spot", float("nan"))))
    trade_date = meta.trade_date
    valuation_time = pd.Timestamp(meta.valuation_time)

    f, buckets = _select(enriched.frame, trade_date, selected)
    c = _contracts(f, buckets, ass, vol, multiplier)
    x = _exposures(c, spot)
    coverage = _coverage(c, x.usable, vol)
    vendor = _vendor_comparison(c, x, spot)
    table, walls, walls_by_bucket, by_bucket = _tables(c, x, selected)
    prof = _profile(c, spot, selected, width, n_points, bucket_profiles)
    notes = _notes(vol, coverage)
    if spot_source != "file":
        notes.append(f"spot {spot:.2f} implied by put-call parity used for GEX, the profile grid and dF/dS: the "
                     f"file's Last {file_spot:g} is stale by {(file_spot / spot - 1) * 100:+.2f}%")
    later = _Later() if later_time is None else _later_profile(c, spot, valuation_time, later_time, vol, prof)
    scenarios: list[Scenario] = []
    flip_range = None
    regime = None
    unavailable = _oi_unavailable(c)
    if unavailable is not None:
        # No positions: every exposure would be a silent 0.0 (and its sign a "regime"); report none instead.
        nan = float("nan")
        x = replace(x, totals=dict.fromkeys(x.totals, nan))
        prof = replace(prof, net=np.full_like(prof.net, nan), by_bucket={b: np.full_like(v, nan)
                                                                        for b, v in prof.by_bucket.items()},
                       flip=FlipResult(None, (), unavailable))
        walls, walls_by_bucket = Walls(None, None, None), {}
        later = _Later()
        notes.append(f"net GEX unavailable: {unavailable}")
    elif robustness:
        scenarios, flip_range, regime = _robustness_summary(c, spot, ass, width, n_points, vol)

    return GexReport(
        underlying=str(meta.underlying),
        trade_date=trade_date,
        valuation_time=valuation_time,
        spot=spot,
        assumption=ass,
        vol_model="sticky-strike surface" if vol is not None else "sticky-strike flat per-option mid IV",
        expiries=selected,
        totals=x.totals,
        vendor=vendor,
        by_strike=table,
        by_bucket=by_bucket,
        walls=walls,
        walls_by_bucket=walls_by_bucket,
        profile_spots=prof.grid,
        profile_net=prof.net,
        profile_by_bucket=prof.by_bucket,
        flip=prof.flip,
        scenarios=tuple(scenarios),
        gamma_flip_range=flip_range,
        regime_robust=regime,
        coverage=coverage,
        profile_time=later.time,
        profile_later=later.profile,
        flip_later=later.flip,
        notes=tuple(notes),
        file_spot=file_spot,
        spot_source=spot_source,
        unavailable_reason=unavailable,
    )


def _robustness(spot: float, grid: np.ndarray, fwd: np.ndarray, strike: np.ndarray, t: np.ndarray, disc: np.ndarray,
                size: np.ndarray, is_call: np.ndarray, f: pd.DataFrame, sigma_mid: np.ndarray,
                vol: VolFunction | None) -> list[Scenario]:
    """Net GEX, flip and walls per (assumption, vol, timing).

    One profile pass per (vol, timing) with call and put columns, combined linearly per assumption (the
    profile is linear in the dealer signs).
    """
    vols: dict[str, np.ndarray] = {"mid": sigma_mid}
    if vol is None:
        # Missing bid/ask IV (zero bid, unsolvable ask) falls back to mid so the scenario moves only what is known.
        for side in ("bid", "ask"):
            iv = _column(f, f"iv_{side}")
            vols[side] = np.where(np.isfinite(iv) & (iv > 0), iv, sigma_mid)
    else:
        # With a surface, bid/ask scenarios shift the surface vol by each option's own (bid or ask - mid) IV.
        iv_mid = _column(f, "iv_mid")
        for side in ("bid", "ask"):
            iv = _column(f, f"iv_{side}")
            shift = np.where(np.isfinite(iv) & np.isfinite(iv_mid), iv - iv_mid, 0.0)
            vols[side] = np.clip(sigma_mid + shift, 1e-4, None)
    timings: dict[str, np.ndarray] = {"exact": t}
    # The floor only matters when some position expires within one business day.
    if np.any((t > 0) & (t < ONE_BUSINESS_DAY) & (size > 0)):
        timings["one_business_day_floor"] = np.where(t > 0, floor_time(t), t)
    cp = np.column_stack([np.where(is_call, size, 0.0), np.where(is_call, 0.0, size)])
    index = np.unique(np.asarray(strike, dtype=float), return_inverse=True)  # the same strikes in every pass
    out: list[Scenario] = []
    for vname, sig in vols.items():
        for tname, tt in timings.items():
            model = ProfileModel.build(spot, fwd, strike, tt, sig, disc, cp)
            prof = model.evaluate(grid)
            unsigned = gamma_exposure(spot_gamma(spot, fwd, strike, tt, sig, disc), size, spot, 1.0, 1.0)
            # per-strike sums of the unsigned exposure; the signs are +-1, so each assumption's sums are exact
            strikes, call_u, put_u = strike_totals(strike, is_call, unsigned, index)
            for a in ASSUMPTIONS.values():
                combo = np.array([a.call_sign, a.put_sign])
                values = prof @ combo
                gex = unsigned * a.signs(is_call)
                fr = find_gamma_flip(model.combined(combo).value, grid, values, spot)
                walls = walls_from_totals(strikes, a.call_sign * call_u, a.put_sign * put_u)
                out.append(Scenario(a.name, vname, tname, float(gex.sum()), fr.flip, fr.crossings, walls))
    return out


