"""Skew core against analytic smiles (flat, linear, quadratic in k) and real chains for sanity."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import norm
from vollib.black.greeks.analytical import delta as vollib_delta

from volsurf.analytics.skew import (
    NodeSmileSurface,
    SmileSurface,
    constant_maturity_metrics,
    smile_at,
    smile_metrics,
    strikes_for_deltas,
)
from volsurf.errors import ParameterError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "real_chains"


class PolySmile:
    """iv(k) = a + b k + c k^2 at every t, forward constant (an analytic test surface)."""

    def __init__(self, a: float, b: float = 0.0, c: float = 0.0, fwd: float = 100.0) -> None:
        self.a, self.b, self.c, self.fwd = a, b, c, fwd

    def iv(self, strike, t):
        k = np.log(np.asarray(strike, dtype=float) / self.fwd)
        return self.a + self.b * k + self.c * k * k

    def forward(self, t):
        return self.fwd


class TermFlat:
    """Flat smiles whose level depends on the expiry: sigma_i at t_i (for the time interpolation test)."""

    def __init__(self, ts, sigmas, fwd=100.0):
        self.ts, self.sigmas, self.fwd = list(ts), list(sigmas), fwd

    def iv(self, strike, t):
        i = int(np.argmin(np.abs(np.asarray(self.ts) - t)))
        return np.full(np.shape(strike), self.sigmas[i])

    def forward(self, t):
        return self.fwd


def test_protocol_is_satisfied_by_test_surface():
    assert isinstance(PolySmile(0.2), SmileSurface)


@pytest.mark.parametrize("sigma", [0.08, 0.2, 0.6])
@pytest.mark.parametrize("t", [2 / 365, 30 / 365, 1.0, 3.0])
def test_flat_surface_has_zero_skew(sigma, t):
    m = smile_metrics(smile_at(PolySmile(sigma), t))
    assert m.atm_iv == pytest.approx(sigma)
    for name in ("rr25", "bf25", "put_skew_10d", "put_skew_90_100", "call_skew_110_100", "skew_90_110", "slope",
                 "curvature"):
        assert getattr(m, name) == pytest.approx(0.0, abs=1e-12), name
    assert m.reason is None


@pytest.mark.parametrize("sigma,t", [(0.2, 0.5), (0.1, 7 / 365), (0.45, 2.0)])
def test_flat_delta_strikes_match_closed_form(sigma, t):
    # Flat vol: N(d1) = c  <=>  k = s (s/2 - Phi^-1(c)), s = sigma sqrt(t)  (hand inversion of d1).
    s = sigma * math.sqrt(t)
    k = strikes_for_deltas(smile_at(PolySmile(sigma), t), [0.25, -0.25, -0.10])
    expected = [s * (s / 2 - norm.ppf(c)) for c in (0.25, 0.75, 0.90)]
    np.testing.assert_allclose(k, expected, atol=1e-10)


@pytest.mark.parametrize("b", [-0.8, -0.3, 0.0, 0.25])
@pytest.mark.parametrize("t", [7 / 365, 0.25, 1.5])
def test_linear_skew_gives_known_slope(b, t):
    m = smile_metrics(smile_at(PolySmile(0.2, b), t))
    assert m.slope == pytest.approx(b, abs=1e-9)
    assert m.curvature == pytest.approx(0.0, abs=1e-6)
    # Fixed-moneyness skews of a linear smile: b * ln(0.9), b * ln(1.1) (hand values).
    assert m.put_skew_90_100 == pytest.approx(b * math.log(0.9), abs=1e-12)
    assert m.call_skew_110_100 == pytest.approx(b * math.log(1.1), abs=1e-12)


def test_quadratic_smile_slope_and_curvature():
    m = smile_metrics(smile_at(PolySmile(0.18, -0.4, 1.5), 0.25))
    assert m.slope == pytest.approx(-0.4, abs=1e-9)
    assert m.curvature == pytest.approx(3.0, abs=1e-6)  # d2/dk2 of 1.5 k^2
    assert m.bf25 > 0  # convex smile: wings above ATM


def _vollib_strike(smile_iv, fwd, t, delta):
    """Independent inversion: brentq on vollib's Black delta (r=0 -> undiscounted N(d1))."""
    flag = "c" if delta > 0 else "p"

    def g(k):
        return vollib_delta(flag, fwd, fwd * math.exp(k), t, 0.0, float(smile_iv(k))) - delta

    return brentq(g, -0.8, 0.8, xtol=1e-13)


@pytest.mark.parametrize("delta", [0.25, -0.25, -0.10, 0.10])
def test_delta_strikes_against_vollib(delta):
    surf = PolySmile(0.2, -0.5, 0.8)
    t = 0.3
    k = strikes_for_deltas(smile_at(surf, t), [delta])[0]
    k_ref = _vollib_strike(lambda x: 0.2 - 0.5 * x + 0.8 * x * x, 100.0, t, delta)
    assert k == pytest.approx(k_ref, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(0.08, 0.5),
    b=st.floats(-0.5, 0.15),
    t=st.floats(3 / 365, 1.0),
)
def test_linear_smile_properties(a, b, t):
    """rr25 has the sign of the slope; the 25-delta strikes have vollib delta +-0.25.

    (Domain kept to arbitrage-free smiles: a steep *rising* linear smile at long maturities breaks Lee's
    moment bound, and its call delta never falls to 0.25.)"""
    surf = PolySmile(a, b)
    m = smile_metrics(smile_at(surf, t))
    assert m.slope == pytest.approx(b, abs=1e-8)
    if abs(b) > 1e-6:
        assert np.sign(m.rr25) == np.sign(b)
    for d, k in ((0.25, m.k_25c), (-0.25, m.k_25p)):
        flag = "c" if d > 0 else "p"
        sig = a + b * k
        assert vollib_delta(flag, 100.0, 100.0 * math.exp(k), t, 0.0, sig) == pytest.approx(d, abs=1e-9)


def test_delta_validation():
    with pytest.raises(ParameterError):
        strikes_for_deltas(smile_at(PolySmile(0.2), 1.0), [1.2])


def test_constant_maturity_interpolates_total_variance():
    t1, t2 = 20 / 365, 45 / 365
    surf = TermFlat([t1, t2], [0.15, 0.25])
    m30, m7, m60 = constant_maturity_metrics(surf, [t1, t2], days=(30, 7, 60))
    tau = 30 / 365
    # Hand value: w(tau) = w1 + (tau - t1)/(t2 - t1) (w2 - w1), iv = sqrt(w / tau).
    w = 0.15**2 * t1 + (tau - t1) / (t2 - t1) * (0.25**2 * t2 - 0.15**2 * t1)
    assert m30.atm_iv == pytest.approx(math.sqrt(w / tau), abs=1e-12)
    assert m30.rr25 == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(m7.atm_iv) and "before the first expiry" in m7.reason
    assert math.isnan(m60.atm_iv) and "beyond the last expiry" in m60.reason


def test_constant_maturity_of_linear_surface_keeps_slope():
    ts = [5 / 365, 21 / 365, 50 / 365, 120 / 365]
    out = constant_maturity_metrics(PolySmile(0.2, -0.35), ts)
    assert [round(m.days) for m in out] == [7, 30, 60, 90]
    for m in out:
        assert m.slope == pytest.approx(-0.35, abs=1e-9)
        assert m.atm_iv == pytest.approx(0.2, abs=1e-12)


def test_node_surface_reproduces_linear_nodes():
    k = np.linspace(-0.3, 0.2, 41)
    ts = np.array([10 / 365, 40 / 365])
    surf = NodeSmileSurface(ts, [100.0, 100.0], [k, k], [0.2 - 0.4 * k, 0.22 - 0.4 * k])
    m = smile_metrics(smile_at(surf, ts[0]))
    assert m.slope == pytest.approx(-0.4, abs=1e-9)  # PCHIP is exact on linear data
    assert m.atm_iv == pytest.approx(0.2)
    # Outside the quoted range: unavailable, not guessed.
    assert np.isnan(surf.iv(np.array([40.0]), ts[0]))[0]


# ----------------------------------------------------------------------------------------------- real files

REAL = [
    ("cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spx_quotedata.csv", "SPX"),
    ("cboe_carlosjimenezdiaz_GEX_Python/2022-03-23/spx_quotedata.csv", "SPX"),
    ("cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spy_quotedata.csv", "SPY"),
]


@pytest.mark.slow
@pytest.mark.parametrize("rel,under", REAL)
def test_real_chain_skew_sanity(rel, under):
    path = SHARED / rel
    if not path.exists():
        pytest.skip("shared real chains not available")
    from volsurf.analytics.measure import snapshot_metrics
    from volsurf.io import load

    m = snapshot_metrics(load(path), per_expiry=False)
    cm30 = m.cm(30)
    assert m.meta["underlying"] == under
    assert 0.05 < cm30.atm_iv < 0.6
    assert -0.15 < cm30.rr25 < 0.0  # equity-index skew: 25d puts over 25d calls
    assert cm30.slope < 0
    assert cm30.put_skew_90_100 > 0
    assert 0 <= cm30.bf25 < 0.03
