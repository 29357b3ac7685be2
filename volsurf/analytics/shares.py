"""OTM put shares and put/call ratios from volume and open-interest sums (numpy only: the stored ``track``
series uses them without pandas).

Notes
-----
``otm_put_volume_share = otm_put_volume / (call_volume + put_volume)``, ``otm_put_oi_share`` likewise with open
interest, ``put_call_volume_ratio = put_volume / call_volume``, ``put_call_oi_ratio = put_oi / call_oi``; NaN where
the denominator is not positive. Volumes and open interest are in contracts; shares and ratios are decimals.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: The sums the shares and ratios are computed from.
SUM_COLUMNS: tuple[str, ...] = ("call_volume", "put_volume", "otm_put_volume", "call_oi", "put_oi", "otm_put_oi")


def share_ratios(sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """OTM put shares and put/call ratios (formulas in the module notes) from arrays of the ``SUM_COLUMNS``
    sums."""
    vol = sums["call_volume"] + sums["put_volume"]
    oi = sums["call_oi"] + sums["put_oi"]

    def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return a / np.where(b > 0, b, np.nan)

    return {
        "otm_put_volume_share": div(sums["otm_put_volume"], vol),
        "otm_put_oi_share": div(sums["otm_put_oi"], oi),
        "put_call_volume_ratio": div(sums["put_volume"], sums["call_volume"]),
        "put_call_oi_ratio": div(sums["put_oi"], sums["call_oi"]),
    }


__all__ = ["SUM_COLUMNS", "share_ratios"]
