"""The normalized snapshot: one row per option contract plus metadata about the file.

Every loader produces a :class:`Snapshot`. Downstream code (IV, forwards, surface, skew, GEX) reads only this
schema, never the vendor's layout.

Columns of ``Snapshot.frame`` (one row per contract)
----------------------------------------------------
==================  ==============================  ================================================================
column              dtype                           meaning
==================  ==============================  ================================================================
contract            str                             OCC-style id without padding: ROOT + YYMMDD + C/P + strike*1000
                                                    as 8 digits, e.g. ``SPXW260803C03000000``
root                str                             option root (SPX, SPXW, NDX, NDXP, SPY, ...)
expiry              datetime64[ns, America/New_York] settlement time: 09:30 for AM-settled roots, 16:00 otherwise
expiry_date         str (YYYY-MM-DD)                calendar date of the expiry
settlement          str                             ``AM`` or ``PM``
strike              float64                         strike in index points / dollars
type                str                             ``call`` or ``put``
bid, ask, last      float64                         quotes in premium points (NaN = missing)
volume              float64                         contracts traded in the session (NaN = missing)
open_interest       float64                         contracts open (NaN = missing)
vendor_iv           float64                         vendor's IV, decimal; 0 / placeholder -> NaN. Comparison only.
vendor_delta        float64                         vendor's delta. Comparison only.
vendor_gamma        float64                         vendor's gamma per 1 point, often rounded. Comparison only.
flags               str                             ``;``-joined names of hygiene rules the row tripped ("" = clean)
==================  ==============================  ================================================================

Rows removed by hygiene (expired contracts, exact duplicates) are not in the frame; they are counted in
``meta.hygiene``. Flagged rows stay in the frame with their rule names in ``flags``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

COLUMNS: tuple[str, ...] = (
    "contract",
    "root",
    "expiry",
    "expiry_date",
    "settlement",
    "strike",
    "type",
    "bid",
    "ask",
    "last",
    "volume",
    "open_interest",
    "vendor_iv",
    "vendor_delta",
    "vendor_gamma",
    "flags",
)

FLOAT_COLUMNS: tuple[str, ...] = (
    "strike",
    "bid",
    "ask",
    "last",
    "volume",
    "open_interest",
    "vendor_iv",
    "vendor_delta",
    "vendor_gamma",
)

# Hygiene rules: name -> (action, description). "removed" rows leave the frame, "flagged" rows stay.
HYGIENE_RULES: dict[str, tuple[str, str]] = {
    "expired": ("removed", "expiry settlement time is at or before the valuation time"),
    "duplicate": ("removed", "same contract id listed more than once (the first row is kept)"),
    "expired_at_valuation": ("removed", "no time to expiry left at a valuation time given to enrich (counted there, "
                                        "rows in EnrichedSnapshot.removed)"),
    "crossed": ("flagged", "bid > ask"),
    "zero_bid": ("flagged", "bid is 0 or missing (no buyer: the quote carries only an upper bound)"),
    "no_ask": ("flagged", "ask is 0 or missing"),
    "vendor_iv_missing": ("flagged", "vendor IV is 0, missing or a placeholder (<= 1e-4)"),
    "missing_oi": ("flagged", "open interest missing"),
    "bad_oi": ("flagged", "open interest negative, non-finite or above OI_MAX (implausible): set to missing, "
                          "never used as a position"),
    "bad_price": ("flagged", "bid, ask or last negative or non-finite: set to missing (so never a quote)"),
    "bad_volume": ("flagged", "volume negative, non-finite or above VOLUME_MAX (implausible): set to missing"),
    "bad_vendor_greek": ("flagged", "vendor IV, delta or gamma non-finite: set to missing (comparison only)"),
}

#: Plausibility bound of open interest per contract (the largest single-strike open interest of SPX/SPY options
#: is a few hundred thousand contracts); above it, like negative or non-finite values, the rule ``bad_oi``.
OI_MAX = 5_000_000.0

#: Plausibility bound of one contract's volume in one session (the busiest SPY/SPX contracts trade well under a
#: million a day); above it, like negative or non-finite values, the rule ``bad_volume``.
VOLUME_MAX = 5_000_000.0


@dataclass(frozen=True)
class SnapshotMeta:
    """Facts about one snapshot file.

    Attributes
    ----------
    underlying : str
        Underlying symbol (``SPX``, ``SPY``, ``NDX``...).
    spot : float
        Underlying price stated by the file (index points / dollars).
    quote_time : pandas.Timestamp
        Time the file states for its quotes (timezone-aware). For CBOE exports this is the download time.
    trade_date : datetime.date
        Exchange session the prices belong to (a weekend, holiday or pre-open download belongs to the
        previous session), from the exchange calendar.
    valuation_time : pandas.Timestamp
        Time from which time to expiry is measured: the quote time during a session, the session close
        for downloads after the close, on weekends or before the next open.
    source_format : str
        Loader that read the file (``cboe_quotedata``, ``yfinance``, ``datashop``, ``optionsdx``, ``canonical``).
    source_file : str
        Path of the file as given.
    hygiene : dict
        Rule name -> number of rows the rule flagged or removed (every rule listed, zero included).
    warnings : tuple of str
        Doubts about the file as a whole (e.g. a date line that contradicts the listed expiries).
    underlying_name : str
        Free-text name of the underlying as in the file.
    """

    underlying: str
    spot: float
    quote_time: pd.Timestamp
    trade_date: dt.date
    valuation_time: pd.Timestamp
    source_format: str
    source_file: str
    hygiene: dict[str, int] = field(default_factory=dict)
    underlying_name: str = ""
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the metadata."""
        return {
            "underlying": self.underlying,
            "underlying_name": self.underlying_name,
            "spot": self.spot,
            "quote_time": self.quote_time.isoformat(),
            "trade_date": self.trade_date.isoformat(),
            "valuation_time": self.valuation_time.isoformat(),
            "format": self.source_format,
            "source_file": self.source_file,
            "flagged": dict(self.hygiene),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Snapshot:
    """A normalized option chain: ``frame`` (schema above), ``meta`` (:class:`SnapshotMeta`), and ``removed``:
    the rows hygiene took out (same columns plus ``reason``), kept so that nothing is dropped silently."""

    frame: pd.DataFrame
    meta: SnapshotMeta
    removed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*COLUMNS, "reason"]))

    def with_frame(self, frame: pd.DataFrame) -> Snapshot:
        """A copy with another frame (same metadata)."""
        return replace(self, frame=frame)

    @property
    def expiries(self) -> list[pd.Timestamp]:
        """Distinct settlement times, ascending."""
        return sorted(self.frame["expiry"].unique())

    def summary(self) -> dict[str, Any]:
        """The ``inspect`` summary: metadata plus counts and open interest / volume totals."""
        f = self.frame
        calls = f["type"] == "call"
        by_expiry = (
            f.groupby(["expiry_date", "root"], sort=True)
            .agg(contracts=("contract", "size"), open_interest=("open_interest", "sum"), volume=("volume", "sum"))
            .reset_index()
        )
        out = self.meta.to_dict()
        out.update(
            {
                "contracts": len(f),
                "expiries": int(f["expiry"].nunique()),
                "roots": sorted(f["root"].unique().tolist()),
                "call_open_interest": float(f.loc[calls, "open_interest"].sum()),
                "put_open_interest": float(f.loc[~calls, "open_interest"].sum()),
                "call_volume": float(f.loc[calls, "volume"].sum()),
                "put_volume": float(f.loc[~calls, "volume"].sum()),
                "expiry_table": [
                    {
                        "expiry": r.expiry_date,
                        "root": r.root,
                        "contracts": int(r.contracts),  # type: ignore[arg-type]  # itertuples fields are untyped
                        "open_interest": float(r.open_interest),  # type: ignore[arg-type]
                        "volume": float(r.volume),  # type: ignore[arg-type]
                    }
                    for r in by_expiry.itertuples()
                ],
            }
        )
        return out
