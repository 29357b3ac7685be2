"""OTM put demand on hand-made chains (numbers checked by hand) and a real chain for sanity."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volsurf.analytics.demand import demand_change, oi_concentration, otm_put_demand, quarter_end_expiry_dates
from volsurf.errors import DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "real_chains"


def chain(rows):
    """rows: (expiry_date, strike, type, volume, oi) -> a frame with the snapshot columns demand needs."""
    df = pd.DataFrame(rows, columns=["expiry_date", "strike", "type", "volume", "open_interest"])
    df["expiry"] = pd.to_datetime(df["expiry_date"]).dt.tz_localize("America/New_York") + pd.Timedelta(hours=16)
    df["contract"] = df["expiry_date"] + df["type"] + df["strike"].astype(str)
    return df


BASE = [
    # expiry 2023-09-22 (forward 100): puts 90, 95 OTM; put 105 ITM; calls
    ("2023-09-22", 90.0, "put", 10, 100),
    ("2023-09-22", 95.0, "put", 20, 200),
    ("2023-09-22", 105.0, "put", 5, 50),
    ("2023-09-22", 100.0, "call", 30, 300),
    ("2023-09-22", 110.0, "call", 15, 150),
    # quarter-end expiry 2023-09-29 (forward 101)
    ("2023-09-29", 100.0, "put", 40, 400),  # K < F = 101: OTM
    ("2023-09-29", 102.0, "put", 10, 100),  # ITM
    ("2023-09-29", 102.0, "call", 20, 200),
]
FWD = {"2023-09-22": 100.0, "2023-09-29": 101.0}


def test_shares_and_ratios_by_hand():
    d = otm_put_demand(chain(BASE), forward=FWD, trade_date=pd.Timestamp("2023-09-14").date())
    # volumes: puts 10+20+5+40+10 = 85, calls 30+15+20 = 65; OTM puts 10+20+40 = 70
    assert d.put_volume == 85 and d.call_volume == 65 and d.otm_put_volume == 70
    assert d.otm_put_volume_share == pytest.approx(70 / 150)
    assert d.put_call_volume_ratio == pytest.approx(85 / 65)
    # OI: puts 100+200+50+400+100 = 850, calls 650; OTM puts 700
    assert d.otm_put_oi_share == pytest.approx(700 / 1500)
    assert d.put_call_oi_ratio == pytest.approx(850 / 650)
    # The quarter-end expiry (2023-09-29, last session of Q3 2023) singled out
    assert d.quarter_end["expiry_date"] == "2023-09-29"
    assert d.quarter_end["otm_put_oi_share"] == pytest.approx(400 / 700)
    row = d.by_expiry.set_index("expiry_date").loc["2023-09-22"]
    assert row["otm_put_oi_share"] == pytest.approx(300 / 800)
    assert not row["is_quarter_end"]


def test_spot_fallback_and_forward_column():
    f = chain(BASE)
    # Spot 96 for every expiry: only the 90 and 95 puts are OTM
    d = otm_put_demand(f, spot=96.0)
    assert d.otm_put_oi == 300
    f["forward"] = f["expiry_date"].map(FWD)
    assert otm_put_demand(f).otm_put_oi == 700
    assert otm_put_demand(f).forward_source.startswith("enriched")


def test_missing_volume_gives_nan_with_note():
    f = chain(BASE)
    f["volume"] = np.nan
    d = otm_put_demand(f, forward=FWD)
    assert math.isnan(d.otm_put_volume_share) and math.isnan(d.put_call_volume_ratio)
    assert any("volume missing" in n for n in d.notes)
    assert d.otm_put_oi_share == pytest.approx(700 / 1500)


def test_empty_or_bad_frame_raises():
    with pytest.raises(DataError):
        otm_put_demand(chain(BASE).iloc[0:0], spot=100.0)
    with pytest.raises(DataError):
        otm_put_demand(chain(BASE).drop(columns=["volume"]), spot=100.0)


@pytest.mark.parametrize(
    "day,expected",
    [
        ("2023-09-29", True),  # Friday, last session of Q3 2023
        ("2024-03-28", True),  # Thursday: 2024-03-29 was Good Friday
        ("2024-03-29", False),
        ("2023-09-15", False),
        ("2022-12-30", True),
        ("2025-06-30", True),
    ],
)
def test_quarter_end_expiry_dates(day, expected):
    assert bool(quarter_end_expiry_dates(np.array([day]))[0]) is expected


def test_concentration_by_hand():
    c = oi_concentration(np.array([100.0, 100.0, 110.0, 120.0]), np.array([30.0, 20.0, 30.0, 20.0]), top=1)
    # per strike 50, 30, 20 of 100: HHI = .25 + .09 + .04 = .38; top-1 share .5
    assert c.herfindahl == pytest.approx(0.38)
    assert c.top_share == pytest.approx(0.5)
    assert c.top_strikes[0]["strike"] == 100.0
    assert c.effective_strikes == pytest.approx(1 / 0.38)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=30))
def test_concentration_bounds(oi):
    oi = np.array(oi)
    strikes = np.arange(oi.size, dtype=float)
    c = oi_concentration(strikes, oi)
    if oi.sum() > 0:
        assert 1 / oi.size - 1e-12 <= c.herfindahl <= 1 + 1e-12
        assert 0 < c.top_share <= 1 + 1e-12
    else:
        assert math.isnan(c.herfindahl)


def test_demand_change_like_for_like():
    prev_rows = [*BASE, ("2023-09-15", 95.0, "put", 0, 5000)]  # expires before the current snapshot
    cur_rows = [list(r) for r in BASE]
    cur_rows[0][4] = 400  # 90 put OI 100 -> 400
    prev = otm_put_demand(chain(prev_rows), forward={**FWD, "2023-09-15": 100.0})
    cur = otm_put_demand(chain([tuple(r) for r in cur_rows]), forward=FWD)
    ch = demand_change(cur, prev, chain([tuple(r) for r in cur_rows]), chain(prev_rows))
    assert ch.totals["otm_put_oi"] == pytest.approx(300 - 5000)
    # Like for like (expiries in both): OTM put OI share 700/1500 -> 1000/1800
    assert ch.like_for_like["otm_put_oi_share"] == pytest.approx(1000 / 1800 - 700 / 1500)
    assert ch.like_for_like["common_expiries"] == 2
    assert ch.top_put_oi_increases[0] == {"expiry_date": "2023-09-22", "strike": 90.0, "oi_change": 300.0}
    assert ch.quarter_end["expiry_date"] == "2023-09-29"
    assert ch.quarter_end["put_oi"] == 0


@pytest.mark.slow
def test_real_spx_demand_sanity():
    path = SHARED / "cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spx_quotedata.csv"
    if not path.exists():
        pytest.skip("shared real chains not available")
    from volsurf.io import load

    s = load(path)
    d = otm_put_demand(s.frame, spot=s.meta.spot, trade_date=s.meta.trade_date)
    assert 0.3 < d.otm_put_oi_share < 0.9
    assert d.put_call_oi_ratio > 1  # index options: more puts than calls open
    assert d.quarter_end["expiry_date"] == "2023-09-29"
    assert 0 < d.concentration["all"].herfindahl < 0.2
