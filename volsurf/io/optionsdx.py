"""OptionsDX end-of-day wide format (``[QUOTE_UNIXTIME], [UNDERLYING_LAST], [EXPIRE_DATE], [C_BID] ...
[P_IV]``), one snapshot per quote date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from volsurf.errors import FormatError
from volsurf.io.common import (
    _finalize,
    _num,
    _other_times_warning,
    _read_long_csv,
    _require_columns,
    _underlying_from_filename,
)
from volsurf.market.snapshot import Snapshot
from volsurf.units import NY


def _odx_col(df: pd.DataFrame, name: str) -> str | None:
    target = name.strip("[]").upper()
    for c in df.columns:
        if c.strip().strip("[]").upper() == target:
            return c
    return None


def optionsdx_table(path: str, text: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The parsed rows of an OptionsDX file (upper-case column names without brackets), their line numbers and
    their quote times (Unix seconds); parsed once per file, however many quote dates it holds."""
    df, line_no = _read_long_csv(path, text)
    df.columns = [c.strip().strip("[]").upper() for c in df.columns]
    _require_columns(path, list(df.columns), ["QUOTE_UNIXTIME", "UNDERLYING_LAST", "EXPIRE_DATE", "STRIKE", "C_BID", "C_ASK", "P_BID", "P_ASK"], 1)
    return df, line_no, _num(df, "QUOTE_UNIXTIME", path, line_no)


def _load_optionsdx(path: str, text: str, lines: list[str], *, underlying: str | None = None, quote_time: pd.Timestamp | None = None, as_of: pd.Timestamp | None = None, table: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None, **_: object) -> Snapshot:
    """One quote date of an OptionsDX file (``quote_time``: the nearest; default the latest). ``table``: the
    file's :func:`optionsdx_table`, when already parsed."""
    df, line_no, qu = optionsdx_table(path, text) if table is None else table
    times = np.unique(qu[np.isfinite(qu)])
    if quote_time is not None:
        target = pd.Timestamp(quote_time).timestamp()
        pick = times[np.argmin(np.abs(times - target))]
    else:
        pick = times[-1]
    m = qu == pick
    df, line_no = df.loc[m].reset_index(drop=True), line_no[m]
    exp_unix = _num(df, "EXPIRE_UNIX", path, line_no) if "EXPIRE_UNIX" in df else None
    exp = pd.to_datetime(df["EXPIRE_DATE"].str.strip(), errors="coerce")
    if exp.isna().any():
        i = int(np.flatnonzero(exp.isna().to_numpy())[0])
        raise FormatError(path, f"cannot read expiry {df['EXPIRE_DATE'].iloc[i]!r}", line=int(line_no[i]), column="[EXPIRE_DATE]", expected="YYYY-MM-DD")
    if exp_unix is not None and np.isfinite(exp_unix).all():
        local = pd.to_datetime(exp_unix, unit="s", utc=True).tz_convert(NY)
        settlement = np.where((local.hour < 12), "AM", "PM")
    else:
        settlement = None
    und = (underlying or _underlying_from_filename(path)).upper()
    strike = _num(df, "STRIKE", path, line_no)
    common = {"expiry_date": exp.dt.strftime("%Y-%m-%d").to_numpy(), "strike": strike}
    sides = []
    for p, kind in (("C", "call"), ("P", "put")):
        d = pd.DataFrame(common)
        d["type"] = kind
        d["bid"] = _num(df, f"{p}_BID", path, line_no)
        d["ask"] = _num(df, f"{p}_ASK", path, line_no)
        d["last"] = _num(df, f"{p}_LAST", path, line_no)
        d["volume"] = _num(df, f"{p}_VOLUME", path, line_no)
        d["vendor_iv"] = _num(df, f"{p}_IV", path, line_no)
        d["vendor_delta"] = _num(df, f"{p}_DELTA", path, line_no)
        d["vendor_gamma"] = _num(df, f"{p}_GAMMA", path, line_no)
        if settlement is not None:
            d["settlement"] = settlement
            # AM-settled monthly vs PM weekly: root follows the settlement for index options
            d["root"] = np.where(settlement == "AM", und, und + ("W" if und in ("SPX", "RUT") else ("P" if und == "NDX" else "")))
        else:
            d["root"] = und
        sides.append(d)
    frame = pd.concat(sides, ignore_index=True)
    spot = float(np.nanmedian(_num(df, "UNDERLYING_LAST", path, line_no)))
    qt = pd.Timestamp(pick, unit="s", tz="UTC").tz_convert(NY)
    return _finalize(frame, path=path, source_format="optionsdx", spot=spot, quote_time=qt, underlying=und, as_of=as_of,
                     extra_warnings=_other_times_warning(len(times)))
