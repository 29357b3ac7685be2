"""Trailing baselines and quarter-end flags (issue 6, items 4-5).

Baseline statistic
------------------
For a metric series ``x_1 .. x_n`` (snapshots ordered by trade date), the baseline of snapshot ``i`` is the
trailing window of the ``window`` previous values ``x_{i-window} .. x_{i-1}`` (the current value excluded).
With at least ``min_history`` finite values in it:

- ``z = (x_i - mean) / max(std, min_std)`` (sample std, ``ddof=1``; the floor ``min_std`` keeps a quiet
  history from turning a small move into a huge z),
- ``percentile`` = share of window values below ``x_i`` (ties count half), in [0, 1].

Fewer values: both are NaN with a reason. "Steepening" is the z (or change) signed so that positive means a
steeper put skew: ``rr25`` falling, ``put_skew_*`` rising.

Flags
-----
Each flag is a :class:`Flag` ``{name, triggered, strength, evidence, description, evaluated}``. ``strength`` is
the score divided by its threshold, so ``strength >= 1`` exactly when a threshold rule triggers (2.0 = twice
the threshold); calendar flags have strength 1.0 inside the window and 0.0 outside; the combined flag takes
the weakest component (min). A flag that cannot be evaluated (e.g. a change-based rule with one snapshot) has
``triggered=False``, ``strength=None`` and ``evidence['reason']``; never a fake zero change.

Thresholds are :class:`FlagThresholds` (defaults argued in ``docs/skew.md``).

Calibrated thresholds
---------------------
With a history of at least :data:`volsurf.signals.calibration.MIN_HISTORY` (60) earlier snapshots, the skew and
demand rules use the empirical distribution instead: the metric's change over
:data:`~volsurf.signals.calibration.DEFAULT_LOOKBACK` (10) sessions, signed as above, triggers at or above the
90th percentile of the same change over the history (:func:`volsurf.signals.calibration.calibrate_records`);
the evidence gives the threshold's source, today's percentile and the number of past observations. Shorter
histories keep the z-score baseline; a single previous snapshot keeps the documented change thresholds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from volsurf.errors import ParameterError
from volsurf.flag import Flag
from volsurf.signals.baseline import rolling_baseline
from volsurf.signals.calibration import MIN_HISTORY, calibrate_records

# +1: a rise steepens the put skew / raises put demand; -1: a fall does (risk reversal, slope).
DIRECTION: dict[str, int] = {
    "rr25": -1,
    "slope": -1,
    "put_skew_90_100": 1,
    "put_skew_10d": 1,
    "skew_90_110": 1,
    "atm_iv": 1,
    "otm_put_oi_share": 1,
    "otm_put_volume_share": 1,
    "put_call_oi_ratio": 1,
    "put_call_volume_ratio": 1,
}


def direction_of(metric: str) -> int:
    """+1 or -1 for a metric name such as ``rr25_30d`` (the ``_<n>d`` suffix is ignored)."""
    if metric in DIRECTION:
        return DIRECTION[metric]
    head, _, tail = metric.rpartition("_")
    if tail.endswith("d") and tail[:-1].isdigit():
        return DIRECTION.get(head, 1)
    return 1


# ---------------------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The trailing baseline of one value (see the module docstring).

    Attributes
    ----------
    value : float
        Current value.
    n : int
        Finite values in the trailing window.
    mean, std : float
        Window mean and sample std (std before the floor).
    z : float
        ``(value - mean) / max(std, min_std)``; NaN when ``n < min_history``.
    percentile : float
        Share of window values below ``value`` (ties half), NaN when ``n < min_history``.
    reason : str or None
        Why z is NaN.
    """

    value: float
    n: int
    mean: float
    std: float
    z: float
    percentile: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trailing_baseline(
    history: Sequence[float] | np.ndarray, current: float, window: int = 20, min_history: int = 5, min_std: float = 0.0
) -> Baseline:
    """Baseline of ``current`` against the last ``window`` values of ``history`` (oldest first)."""
    h = np.asarray(history, dtype=float)
    r = rolling_baseline(np.append(h, float(current)), window, min_history, min_std)
    n = int(r["n"][-1])
    reason = None
    if not math.isfinite(float(current)):
        reason = "current value unavailable"
    elif n < min_history:
        reason = f"only {n} prior values in the trailing window (need {min_history})"
    return Baseline(float(current), n, float(r["mean"][-1]), float(r["std"][-1]), float(r["z"][-1]),
                    float(r["percentile"][-1]), reason)


# ---------------------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagThresholds:
    """Configurable thresholds of the flag rules (decimal vol, decimal shares; see docs/skew.md).

    Attributes
    ----------
    window_days : int
        Quarter-end window: the last ``window_days`` sessions of the quarter.
    maturity_days : int
        Constant maturity whose skew is tested (days).
    z : float
        Baseline z-score that counts as "beyond the baseline" (history mode).
    baseline_window, min_history : int
        Trailing window length and the minimum finite values in it (history mode).
    min_std_vol, min_std_share : float
        Floors of the baseline std for vol metrics (decimal vol) and shares (decimal).
    rr25_change, put_skew_change : float
        Steepening versus the previous snapshot (decimal vol): rr25 falling / 90-100 put skew rising by this.
    oi_share_change, volume_share_change : float
        Rise of the OTM put OI / volume share versus the previous snapshot (decimal share).
    rebalance_drift : float
        Equity drift of a 60/40 book (fraction of the book) that counts as a material rebalancing flow.
    """

    window_days: int = 5
    maturity_days: int = 30
    z: float = 1.5
    baseline_window: int = 20
    min_history: int = 5
    min_std_vol: float = 0.0025
    min_std_share: float = 0.0025
    rr25_change: float = 0.01
    put_skew_change: float = 0.01
    oi_share_change: float = 0.01
    volume_share_change: float = 0.05
    rebalance_drift: float = 0.01

    def with_overrides(self, overrides: Mapping[str, str | float]) -> FlagThresholds:
        """A copy with ``name=value`` overrides (values parsed to the field's type)."""
        kinds = {f.name: f.type for f in fields(self)}
        vals: dict[str, Any] = {}
        for k, v in overrides.items():
            if k not in kinds:
                raise ParameterError(f"unknown threshold {k!r}", hint=f"one of {', '.join(kinds)}")
            try:
                vals[k] = int(v) if kinds[k] in ("int", int) else float(v)
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"threshold {k}={v!r} is not a number") from exc
        out = replace(self, **vals)
        out.validate()
        return out

    def validate(self) -> None:
        """Raise :class:`ParameterError` for non-positive thresholds or an impossible window."""
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"threshold {f.name} must be a positive number, got {v}")
        if self.min_history < 2 or self.min_history > self.baseline_window:
            raise ParameterError("need baseline_window >= min_history >= 2")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _not_evaluated(name: str, description: str, reason: str, **evidence: Any) -> Flag:
    return Flag(name, False, None, {"reason": reason, **evidence}, description, evaluated=False)


def _num(record: Mapping[str, Any] | None, key: str) -> float:
    if record is None:
        return math.nan
    v = record.get(key)
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class _Score:
    metric: str
    mode: str  # "calibrated" | "baseline" | "previous"
    score: float  # signed so that positive = steeper / more demand
    threshold: float
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def strength(self) -> float:
        return self.score / self.threshold


def _score_metric(
    metric: str,
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
    change_threshold: float,
    min_std: float,
    th: FlagThresholds,
    change_override: float | None = None,
) -> _Score | str:
    """Score one metric against the baseline (history) or the previous snapshot; a string = reason."""
    x = _num(current, metric)
    if not math.isfinite(x):
        return f"{metric} unavailable on the current snapshot"
    sign = direction_of(metric)
    if history and len(history) >= MIN_HISTORY:
        cal = calibrate_records([*history, current], {metric: (sign, change_threshold)})[metric]
        if cal.calibrated and cal.change_today is not None and math.isfinite(cal.change_today) and cal.threshold > 0:
            return _Score(metric, "calibrated", sign * cal.change_today, cal.threshold, {"value": x, **cal.evidence()})
    if history:
        hist = [_num(r, metric) for r in history]
        b = trailing_baseline(hist, x, th.baseline_window, th.min_history, min_std)
        if b.reason is None:
            return _Score(
                metric,
                "baseline",
                sign * b.z,
                th.z,
                {
                    "value": x,
                    "baseline_mean": b.mean,
                    "baseline_std": b.std,
                    "baseline_n": b.n,
                    "z": b.z,
                    "percentile": b.percentile,
                    "threshold_z": th.z,
                },
            )
        if previous is None:
            return f"{metric}: {b.reason}"
    if previous is None:
        return "no previous snapshot or history: change-based rule not evaluated"
    x0 = _num(previous, metric)
    change = x - x0 if change_override is None else change_override
    if not math.isfinite(change):
        return f"{metric} unavailable on the previous snapshot"
    ev: dict[str, Any] = {"value": x, "previous": x0, "change": change, "threshold_change": sign * change_threshold}
    if change_override is not None:
        ev["change_basis"] = "expiries listed in both snapshots"
    return _Score(metric, "previous", sign * change, change_threshold, ev)


def _rule_from_scores(name: str, description: str, scores: list[_Score | str]) -> Flag:
    good = [s for s in scores if isinstance(s, _Score)]
    if not good:
        reasons = [s for s in scores if isinstance(s, str)]
        return _not_evaluated(name, description, "; ".join(dict.fromkeys(reasons)))
    strength = max(s.strength for s in good)
    evidence: dict[str, Any] = {"mode": good[0].mode}
    for s in good:
        evidence[s.metric] = {**s.evidence, "strength": s.strength}
    skipped = [s for s in scores if isinstance(s, str)]
    if skipped:
        evidence["skipped"] = skipped
    return Flag(name, bool(strength >= 1.0), float(strength), evidence, description)


def quarter_end_window_flag(trade_date: dt.date, th: FlagThresholds) -> Flag:
    """Inside the last ``window_days`` sessions of the quarter (NYSE calendar)."""
    from volsurf.market.calendar import calendar_context

    desc = f"trade date is within the last {th.window_days} NYSE sessions of the calendar quarter"
    ctx = calendar_context(trade_date, window=th.window_days)
    inside = bool(ctx.in_quarter_end_window)
    return Flag(
        "quarter_end_window",
        inside,
        1.0 if inside else 0.0,
        {
            "trade_date": ctx.trade_date.isoformat(),
            "quarter_end_date": ctx.quarter_end_date.isoformat(),
            "trading_days_to_quarter_end": ctx.trading_days_to_quarter_end,
            "window_days": th.window_days,
            "in_year_end_window": bool(ctx.in_year_end_window),
        },
        desc,
    )


def skew_steepening_flag(
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
    th: FlagThresholds,
) -> Flag:
    """rr25 or the 90/100 put skew at ``maturity_days`` steeper than its baseline (or than the previous).

    When that maturity is not available on the snapshots compared (e.g. a chain listing one month of
    expiries has no 60/90-day point, one without a 30-day bracket has no 30-day point), the nearest
    constant maturity available on all of them is used and named in the evidence.
    """
    d = _pick_maturity(current, previous, history, th)
    desc = (
        f"{d}d put skew steepened: 25d risk reversal fell or 90/100 put skew rose by more than "
        f"z={th.z:g} against the trailing baseline (history), or by {th.rr25_change * 100:g} / "
        f"{th.put_skew_change * 100:g} vol points against the previous snapshot"
    )
    scores = [
        _score_metric(f"rr25_{d}d", current, previous, history, th.rr25_change, th.min_std_vol, th),
        _score_metric(f"put_skew_90_100_{d}d", current, previous, history, th.put_skew_change, th.min_std_vol, th),
    ]
    flag = _rule_from_scores("skew_steepening", desc, scores)
    if flag.evaluated:
        before = previous if previous is not None else (history[-1] if history else None)
        skew_ev = _skew_index_evidence(current, before)
        if skew_ev is not None:
            flag.evidence["skew_index_30d"] = skew_ev
    return flag


def _skew_index_evidence(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The SKEW-method index's change beside the smile measures (evidence only, never a trigger).

    A rise in SKEW is a steepening. Its far-put-wing sensitivity (the move when the strip loses its three
    farthest puts) is shown with it: a change inside the larger of the two snapshots' sensitivities is within
    what the wing's last quotes alone can do.
    """
    x = _num(current, "skew_index_30d")
    if not math.isfinite(x):
        return None
    x0 = _num(previous, "skew_index_30d")
    sens = max((abs(v) for v in (_num(current, "skew_index_sensitivity"), _num(previous, "skew_index_sensitivity"))
                if math.isfinite(v)), default=math.nan)
    change = x - x0
    return {
        "value": x,
        "previous": x0,
        "change": change,
        "wing_sensitivity": sens,
        "change_beyond_wing_sensitivity": bool(math.isfinite(change) and math.isfinite(sens) and abs(change) > sens),
    }


def _pick_maturity(
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
    th: FlagThresholds,
) -> int:
    """``maturity_days`` if comparable, else the nearest constant maturity present on the compared records."""
    found = sorted(
        {int(k[len("rr25_") : -1]) for k in current if k.startswith("rr25_") and k.endswith("d") and k[5:-1].isdigit()}
    )
    cands = sorted(set(found) | {th.maturity_days}, key=lambda d: (abs(d - th.maturity_days), d))
    for d in cands:
        key = f"rr25_{d}d"
        if not math.isfinite(_num(current, key)):
            continue
        if history and sum(math.isfinite(_num(r, key)) for r in history[-th.baseline_window :]) >= th.min_history:
            return d
        if previous is not None and math.isfinite(_num(previous, key)):
            return d
    return th.maturity_days


def otm_put_demand_flag(
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
    th: FlagThresholds,
    like_for_like: Mapping[str, float] | None = None,
) -> Flag:
    """OTM put share of open interest (or of volume) rose beyond the baseline or the change threshold.

    ``like_for_like`` (share changes over expiries listed in both snapshots) replaces the raw change in
    previous mode, so an expiry rolling off does not move the share mechanically.
    """
    desc = (
        f"OTM put demand rose: OTM put share of open interest up {th.oi_share_change * 100:g} points or of "
        f"volume up {th.volume_share_change * 100:g} points against the previous snapshot, or z>={th.z:g} "
        "against the trailing baseline"
    )
    lfl = like_for_like or {}
    scores = [
        _score_metric("otm_put_oi_share", current, previous, history, th.oi_share_change, th.min_std_share, th,
                      lfl.get("otm_put_oi_share")),
        _score_metric("otm_put_volume_share", current, previous, history, th.volume_share_change,
                      th.min_std_share, th, lfl.get("otm_put_volume_share")),
    ]
    return _rule_from_scores("otm_put_demand_rising", desc, scores)


def quarter_end_hedging_flag(window: Flag, steep: Flag, demand: Flag) -> Flag:
    """Combined: inside the quarter-end window AND skew steepening AND OTM put demand rising."""
    desc = "inside the quarter-end window, skew steepened beyond its baseline, and OTM put demand rose"
    parts = {"quarter_end_window": window, "skew_steepening": steep, "otm_put_demand_rising": demand}
    ev: dict[str, Any] = {k: {"triggered": f.triggered, "strength": f.strength} for k, f in parts.items()}
    missing = [k for k, f in parts.items() if not f.evaluated]
    if missing:
        return _not_evaluated("quarter_end_hedging", desc, f"components not evaluated: {', '.join(missing)}", **ev)
    strength = min(float(f.strength) for f in parts.values())  # type: ignore[arg-type]
    return Flag("quarter_end_hedging", all(f.triggered for f in parts.values()), strength, ev, desc)


def rebalancing_flow_flag(
    equity_ytd: float, bond_ytd: float, th: FlagThresholds, window: Flag | None = None, aum: float | None = None
) -> Flag:
    """A 60/40 book drifted by at least ``rebalance_drift`` of its value (uses :mod:`volsurf.flows.rebalance`)."""
    desc = (
        f"a 60/40 book rebalanced at the start of the year has drifted by at least {th.rebalance_drift * 100:g}% "
        "of its value in equities; restoring the weights trades the difference (calendar rebalancers at quarter-end)"
    )
    from volsurf.flows.rebalance import DEFAULT_AUM, rebalance_flow

    book = float(aum or DEFAULT_AUM)
    res = rebalance_flow({"equity": float(equity_ytd), "bond": float(bond_ytd)}, aum=book)
    drifted = float(res.drifted_weights["equity"])
    eq_usd = float(res.trades["equity"])
    eq_pct = eq_usd / float(res.aum)
    strength = abs(eq_pct) / th.rebalance_drift
    ev = {
        "equity_ytd": float(equity_ytd),
        "bond_ytd": float(bond_ytd),
        "equity_weight_drifted": drifted,
        "equity_trade_pct_of_book": eq_pct,
        "equity_trade_usd": eq_usd,
        "aum_usd": book,
        "direction": "sell equities" if eq_pct < 0 else "buy equities" if eq_pct > 0 else "none",
        "threshold_drift": th.rebalance_drift,
    }
    if window is not None:
        ev["in_quarter_end_window"] = window.triggered
    return Flag("rebalancing_flow", bool(strength >= 1.0), float(strength), ev, desc)


def evaluate_flags(
    current: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    like_for_like: Mapping[str, float] | None = None,
    equity_ytd: float | None = None,
    bond_ytd: float | None = None,
    thresholds: FlagThresholds | None = None,
) -> list[Flag]:
    """Evaluate every rule on one snapshot's metric record.

    Parameters
    ----------
    current : mapping
        Flat metric record (``trade_date``, ``rr25_30d``, ``put_skew_90_100_30d``, ``otm_put_oi_share``,
        ``otm_put_volume_share``...), e.g. :meth:`volsurf.analytics.measure.SnapshotMetrics.record`.
    previous : mapping, optional
        The previous snapshot's record (change mode).
    history : sequence of mappings, optional
        Earlier records, oldest first (baseline mode; takes precedence when long enough).
    like_for_like : mapping, optional
        Share changes over expiries common to both snapshots (see :func:`volsurf.analytics.demand.demand_change`).
    equity_ytd, bond_ytd : float, optional
        Year-to-date total returns (decimal) for the rebalancing rule; both or neither.
    thresholds : FlagThresholds, optional

    Returns
    -------
    list of Flag
        ``quarter_end_window``, ``skew_steepening``, ``otm_put_demand_rising``, ``quarter_end_hedging`` and,
        with returns, ``rebalancing_flow``.
    """
    th = thresholds or FlagThresholds()
    th.validate()
    if (equity_ytd is None) != (bond_ytd is None):
        raise ParameterError("give both equity and bond YTD returns or neither", hint="pass equity_ytd and bond_ytd together, e.g. 0.12 and 0.02")
    td = current.get("trade_date")
    if td is None:
        raise ParameterError("metric record has no trade_date")
    trade_date = dt.date.fromisoformat(str(td)[:10])
    window = quarter_end_window_flag(trade_date, th)
    steep = skew_steepening_flag(current, previous, history, th)
    demand = otm_put_demand_flag(current, previous, history, th, like_for_like)
    flags = [window, steep, demand, quarter_end_hedging_flag(window, steep, demand)]
    if equity_ytd is not None and bond_ytd is not None:
        flags.append(rebalancing_flow_flag(equity_ytd, bond_ytd, th, window))
    return flags
