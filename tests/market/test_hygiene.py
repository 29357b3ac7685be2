"""Hygiene rules on open interest and on rows that expire at an overridden valuation time."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volsurf.errors import DataQualityWarning
from volsurf.market.snapshot import HYGIENE_RULES, OI_MAX

SAMPLE = Path(__file__).resolve().parents[2] / "sample_chains" / "spy_2025-06-09_close.csv"


def test_negative_non_finite_and_absurd_open_interest_is_a_counted_rule():
    from volsurf.io.common import _finalize

    oi = [100.0, -5.0, math.inf, 2.0 * OI_MAX, math.nan, 0.0]
    frame = pd.DataFrame({
        "root": ["SPY"] * 6, "expiry_date": ["2025-06-20"] * 6, "type": ["call", "put"] * 3,
        "strike": [590.0, 590.0, 595.0, 595.0, 600.0, 600.0], "bid": [1.0] * 6, "ask": [1.1] * 6,
        "open_interest": oi,
    })
    snap = _finalize(frame, path="x.csv", source_format="test", spot=595.0,
                     quote_time=pd.Timestamp("2025-06-09 16:30", tz="America/New_York"))
    assert "bad_oi" in HYGIENE_RULES
    assert snap.meta.hygiene["bad_oi"] == 3  # -5, inf and 1e7: never zeroed, never used
    assert snap.meta.hygiene["missing_oi"] == 1
    f = snap.frame.sort_values(["strike", "type"])
    got = f["open_interest"].to_numpy()
    np.testing.assert_array_equal(np.isnan(got), [False, True, True, True, True, False])
    assert got[0] == 100.0 and got[-1] == 0.0
    assert (f["flags"].str.contains("bad_oi")).sum() == 3


def test_rows_expired_at_an_overridden_valuation_time_are_counted_and_kept():
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich

    snap = load(str(SAMPLE))
    first = snap.frame["expiry"].min()
    n_first = int((snap.frame["expiry"] == first).sum())
    with pytest.warns(DataQualityWarning, match="expired_at_valuation"):
        enr = enrich(snap, valuation_time=first + pd.Timedelta(minutes=1), quote_ivs=False, greeks=False)
    assert len(enr.frame) == len(snap.frame) - n_first
    gone = enr.removed[enr.removed["reason"] == "expired_at_valuation"]
    assert len(gone) == n_first
    assert set(gone["contract"]) == set(snap.frame.loc[snap.frame["expiry"] == first, "contract"])
    assert enr.meta.hygiene["expired_at_valuation"] == n_first
    # the snapshot's own removed rows are still there
    assert len(enr.removed) == len(snap.removed) + n_first
