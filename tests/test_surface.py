"""Tests for volsurf.surface: both layers on synthetic SSVI chains, arbitrage checks, query API, real chains."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from vollib.black import implied_volatility as vollib_iv

from volsurf.errors import DataError, ParameterError
from volsurf.pricing import black76_price, vega
from volsurf.surface import SEVEN_DAYS, ExpiryQuotes, expiry_quotes_from_enriched, fit_surface
from volsurf.svi import essvi_total_variance

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "real_chains"

# Power-law SSVI (Gatheral-Jacquier 2014): theta = v t, phi = eta / theta^gamma; eta (1 + |rho|) <= 2 => no arbitrage
V, RHO, ETA, GAMMA = 0.04, -0.7, 0.8, 0.4
TIMES = (0.04, 0.1, 0.25, 0.5, 1.0)


def _true_iv(k_log, t):
    theta = V * t
    return np.sqrt(essvi_total_variance(k_log, theta, RHO, theta * ETA / theta**GAMMA) / t)


def _synthetic_chain(seed: int = 0, spot: float = 100.0) -> list[ExpiryQuotes]:
    """OTM quotes from a known SSVI surface; bid/ask = true price -+ a half-spread of ~0.5 vol point
    (at least 0.001 wide), with the mid jittered inside the band (bid-ask noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in TIMES:
        fwd = spot * np.exp(0.02 * t)
        disc = np.exp(-0.045 * t)
        s = np.sqrt(V * t)
        x = np.linspace(-3.0 * s, 2.0 * s, 45)
        strike = np.round(fwd * np.exp(x), 2)
        iv = _true_iv(np.log(strike / fwd), t)
        both = np.concatenate([strike, strike])
        is_call = np.concatenate([np.ones(strike.size, bool), np.zeros(strike.size, bool)])
        ivb = np.concatenate([iv, iv])
        price = black76_price(fwd, both, t, ivb, is_call, disc)
        half = np.maximum(0.5 * 0.005 * vega(fwd, both, t, ivb, disc), 0.0005)
        mid = price + rng.uniform(-0.3, 0.3, both.size) * half
        out.append(ExpiryQuotes(t, fwd, disc, both, is_call, mid - half, mid + half, label=f"T{t}"))
    return out


@cache
def _synthetic_surface(seed: int = 0):
    return fit_surface(_synthetic_chain(seed))


def _dense_no_arbitrage(surface, k_grid, times, tol=1e-9):
    """Counts of butterfly (convex, monotone, bounds) and calendar violations of c(k, t) on a dense grid."""
    prev = None
    bfly = cal = 0
    for t in times:
        c = surface.call_normalised(k_grid, t)
        slope = np.diff(c) / np.diff(k_grid)
        bfly += int(np.sum(np.diff(slope) < -tol / np.diff(k_grid)[1:]) + np.sum(slope > tol) + np.sum(slope < -1 - tol))
        bfly += int(np.sum(c < np.maximum(1 - k_grid, 0) - tol) + np.sum(c > 1 + tol))
        if prev is not None:
            cal += int(np.sum(c < prev - tol))
        prev = c
    return bfly, cal


@pytest.mark.parametrize("seed", [0, 1])
def test_both_layers_recover_ssvi_iv_within_a_tenth_of_a_vol_point(seed):
    surf = _synthetic_surface(seed)
    assert len(surf.slices) == len(TIMES)
    for sl in surf.slices:
        true = _true_iv(np.log(sl.strike / sl.forward), sl.t)
        for layer in ("iv_mc", "iv_svi", "iv_essvi"):
            err = np.abs(getattr(sl, layer) - true)
            assert np.nanmax(err) < 1e-3, (sl.label, layer, np.nanmax(err))
        assert sl.mc.inside_share == 1.0


def test_query_iv_matches_slices_and_vollib():
    surf = _synthetic_surface()
    sl = surf.slices[2]
    strikes = sl.strike[sl.liquid][::7]
    iv = surf.iv(strikes, sl.t)
    np.testing.assert_allclose(iv, np.interp(strikes, sl.strike[sl.liquid], sl.iv_mc[sl.liquid]), atol=1e-9)
    # independent inversion of the surface's own call price with vollib
    price = surf.call_price(strikes, sl.t)
    ref = [vollib_iv.implied_volatility(p, sl.forward, k, 0.0, sl.t, "c") for p, k in zip(price / sl.discount, strikes, strict=True)]
    np.testing.assert_allclose(iv, ref, atol=1e-7)
    w = surf.total_variance(strikes, sl.t)
    np.testing.assert_allclose(w, iv**2 * sl.t, rtol=1e-12)
    np.testing.assert_allclose(surf.total_variance(k=strikes / sl.forward, t=sl.t), w, rtol=1e-12)


def test_interpolated_times_are_between_slices_and_recover_truth():
    surf = _synthetic_surface()
    t = 0.3
    f = surf.forward(t)
    assert surf.slices[2].forward < f < surf.slices[3].forward
    k = np.exp(np.linspace(-0.2, 0.1, 9))
    iv = surf.iv_k(k, t)
    # ATM total variance is linear in t between slices by construction; the smile stays near the SSVI truth
    assert np.max(np.abs(iv - _true_iv(np.log(k), t))) < 5e-3


def test_dense_grid_no_arbitrage_synthetic_including_between_and_beyond_slices():
    surf = _synthetic_surface()
    k = np.geomspace(*surf.k_domain, 1500)
    times = np.concatenate([np.linspace(0.005, 2.5, 80), [s.t for s in surf.slices]])
    bfly, cal = _dense_no_arbitrage(surf, k, np.sort(times))
    assert bfly == 0
    assert cal == 0


@pytest.mark.parametrize("is_call, delta", [(True, 0.25), (True, 0.5), (False, -0.25), (False, -0.1)])
def test_iv_at_delta_is_consistent(is_call, delta):
    surf = _synthetic_surface()
    t = 0.25
    iv, strike = surf.iv_at_delta(delta, t, is_call)
    from scipy.special import ndtr

    f = surf.forward(t)
    d1 = (np.log(f / strike) + 0.5 * iv**2 * t) / (iv * np.sqrt(t))
    got = ndtr(d1) if is_call else ndtr(d1) - 1.0
    np.testing.assert_allclose(got, delta, atol=1e-6)
    np.testing.assert_allclose(iv, surf.iv(strike, t), atol=1e-10)


def test_arbitrageable_quote_is_reported_not_followed():
    chain = _synthetic_chain()
    q = chain[2]
    bid, ask = q.bid.copy(), q.ask.copy()
    # a call quoted far above its neighbours (non-convex): its band cannot be met without arbitrage
    i = int(np.argmin(np.abs(q.strike - q.forward * 1.05)) + 0)
    i = np.flatnonzero(q.is_call & (q.strike == q.strike[i]))[0]
    bid[i] += 1.0
    ask[i] += 1.0
    chain[2] = ExpiryQuotes(q.t, q.forward, q.discount, q.strike, q.is_call, bid, ask, q.label)
    surf = fit_surface(chain)
    sl = surf.slices[2]
    j = np.flatnonzero(np.isclose(sl.strike, q.strike[i]) & sl.is_call)[0]
    assert sl.arb_inconsistent[j]
    assert sl.raw_butterfly_violations > 0
    k = np.geomspace(*surf.k_domain, 800)
    assert _dense_no_arbitrage(surf, k, [s.t for s in surf.slices]) == (0, 0)


def test_too_few_quotes_are_skipped_and_reported():
    chain = _synthetic_chain()
    q = chain[0]
    keep = slice(0, 3)
    chain[0] = ExpiryQuotes(q.t, q.forward, q.discount, q.strike[keep], q.is_call[keep], q.bid[keep], q.ask[keep], "thin")
    surf = fit_surface(chain)
    assert [s[0] for s in surf.skipped] == ["thin"]
    assert len(surf.slices) == len(TIMES) - 1


def test_no_usable_expiry_raises():
    q = _synthetic_chain()[0]
    empty = ExpiryQuotes(q.t, q.forward, q.discount, q.strike, q.is_call, q.bid * 0, q.ask, "x")
    with pytest.raises(DataError):
        fit_surface([empty])


def test_bad_query_parameters_raise():
    surf = _synthetic_surface()
    with pytest.raises(ParameterError):
        surf.iv_at_delta(1.5, 0.1)
    with pytest.raises(ParameterError):
        surf.total_variance(t=0.1)
    with pytest.raises(ParameterError):
        surf.iv_k(1.0, 0.0)


def test_slice_to_dict_and_summary_are_plain():
    import json

    surf = _synthetic_surface()
    json.dumps([s.to_dict() for s in surf.slices])
    summary = surf.summary()
    json.dumps(summary)
    assert summary["mc_inside_share"] == 1.0


# ------------------------------------------------------------------------------------------- real chains


def _real_files() -> list[Path]:
    if not REAL.is_dir():
        return []
    return sorted(p for p in REAL.rglob("*.csv"))


@cache
def _real_quotes(path: str):
    from volsurf.enrich import enrich
    from volsurf.formats import load

    snap = load(path)
    if snap.meta.underlying not in ("SPX", "SPY") or snap.frame["expiry_date"].nunique() < 5:
        return None
    return expiry_quotes_from_enriched(enrich(snap))


@pytest.mark.slow
@pytest.mark.parametrize("path", _real_files(), ids=lambda p: str(p.relative_to(REAL)))
def test_real_chain_market_layer_is_arbitrage_free_and_inside_the_market(path):
    quotes = _real_quotes(str(path))
    if quotes is None:
        pytest.skip("not an SPX/SPY chain with at least 5 expiries")
    surf = fit_surface(quotes)
    k = np.geomspace(*surf.k_domain, 1500)
    bfly, cal = _dense_no_arbitrage(surf, k, [s.t for s in surf.slices])
    assert bfly == 0 and cal == 0
    shares = [s.mc.inside_share for s in surf.slices if s.t >= SEVEN_DAYS and s.mc.n_liquid]
    assert np.median(shares) >= 0.95
    # the parametric layer is reported for every slice
    assert all(np.isfinite(s.svi.rmse_vol_pts) for s in surf.slices)
