"""volsurf's own canonical CSV: metadata in ``#`` lines, then the schema's columns (``volsurf normalize``)."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import FormatError, clip
from volsurf.io.common import (
    MISSING_TOKENS,
    _check_strikes,
    _finalize,
    _num,
    _per_distinct,
    _read_long_csv,
    _require_columns,
    _set_aside_unusable,
    check_spot,
    printable,
)
from volsurf.market.snapshot import COLUMNS, FLOAT_COLUMNS, OI_MAX, Snapshot, SnapshotMeta
from volsurf.units import NY

CANONICAL_MAGIC = "# volsurf-canonical v1"
CANONICAL_FLOAT_FORMAT = "%.10g"

def write_canonical(snapshot: Snapshot, path: str | Path | None = None) -> str:
    """Write ``snapshot`` as volsurf's canonical CSV (metadata in ``#`` lines, then the schema's columns).

    Returns the text; writes it to ``path`` when given. :func:`load` reads it back unchanged.
    """
    m = snapshot.meta
    head = [
        CANONICAL_MAGIC,
        f"# underlying: {m.underlying}",
        f"# underlying_name: {m.underlying_name}",
        f"# spot: {m.spot!r}",
        f"# quote_time: {m.quote_time.isoformat()}",
        f"# trade_date: {m.trade_date.isoformat()}",
        f"# valuation_time: {m.valuation_time.isoformat()}",
        f"# source_format: {m.source_format}",
        f"# source_file: {Path(m.source_file).name}",
        f"# hygiene: {json.dumps(m.hygiene)}",
        f"# warnings: {json.dumps(list(m.warnings))}",
    ]
    f = snapshot.frame.copy()
    f["expiry"] = _per_distinct(f["expiry"], lambda x: x.isoformat())
    for c in f.columns:
        v = f[c].to_numpy()
        if v.dtype == np.float64 and not (np.signbit(v) & (v == 0)).any():  # factorize merges -0.0 into 0.0
            # What to_csv(float_format=CANONICAL_FLOAT_FORMAT) writes, formatted once per distinct value (to_csv
            # formats every cell in Python; chains repeat strikes, volumes and open interest).
            f[c] = _per_distinct(v, lambda x: "" if x != x else CANONICAL_FLOAT_FORMAT % x)
    body = f.to_csv(index=False, float_format=CANONICAL_FLOAT_FORMAT, lineterminator="\n")
    text = "\n".join(head) + "\n" + body
    if path is not None:
        from volsurf._paths import write_atomic

        write_atomic(path, text)
    return text


# Missing-number spellings the fast canonical read accepts; anything else that is not a plain number makes the C
# parser fail and the checked path (:func:`_parse_numbers`, case-insensitive, exact error lines) take over.
_FAST_NA = sorted({v for t in MISSING_TOKENS for v in (t, t.upper(), t.capitalize())} | {"NaN", "N/A"})


def _canonical_body_fast(text: str) -> pd.DataFrame | None:
    """The canonical body with float columns typed by the CSV reader itself, or None.

    pyarrow's CSV reader when it is installed (several times faster than pandas' C parser at building string
    columns), else pandas' C parser. None when anything is unusual (missing or duplicate columns, padded
    fields, a field the float parser rejects): the caller then takes the string path with per-field checks,
    which gives the same values for every file this accepts.
    """
    lines = text.split("\n", 64)
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].startswith("#")):
        start += 1
    if start >= len(lines) - 1:
        return None  # header not within the first lines, or no body: leave it to the checked path
    header = next(csv.reader([lines[start]]))
    if header != [h.strip() for h in header] or len(set(header)) != len(header) or not set(COLUMNS) <= set(header):
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pa_compute
        import pyarrow.csv as pa_csv
    except ImportError:
        pa = None
    if pa is not None:
        types = {c: (pa.float64() if c in FLOAT_COLUMNS else pa.string()) for c in header}
        try:
            table = pa_csv.read_csv(
                io.BytesIO(text.encode("utf-8")),
                read_options=pa_csv.ReadOptions(skip_rows=start, use_threads=False),
                convert_options=pa_csv.ConvertOptions(
                    column_types=types, null_values=_FAST_NA, strings_can_be_null=False, quoted_strings_can_be_null=False
                ),
            )
        except (pa.ArrowException, ValueError):
            return None
        for c in header:
            if c not in FLOAT_COLUMNS and any(
                pa_compute.any(pa_compute.starts_with(table[c], ws)).as_py() for ws in (" ", "\t")
            ):
                return None  # padded fields: the checked path strips them (skipinitialspace)
        return table.to_pandas()
    dtype: defaultdict[str, Any] = defaultdict(lambda: str, dict.fromkeys(FLOAT_COLUMNS, "float64"))
    try:
        df = pd.read_csv(
            io.StringIO(text), skiprows=start, dtype=dtype, keep_default_na=False,
            na_values=dict.fromkeys(FLOAT_COLUMNS, _FAST_NA), skipinitialspace=True, engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if not all(df[c].dtype == np.float64 for c in FLOAT_COLUMNS):
        return None
    return df


def _load_canonical(path: str, text: str, lines: list[str], *, as_of: pd.Timestamp | None = None, **_: object) -> Snapshot:
    meta: dict[str, str] = {}
    n_head = 0
    for line in lines:
        if not line.startswith("#"):
            break
        n_head += 1
        if ":" in line:
            k, v = line[1:].split(":", 1)
            meta[k.strip()] = v.strip()
    for key in ("underlying", "spot", "quote_time", "trade_date", "valuation_time", "hygiene"):
        if key not in meta:
            raise FormatError(path, f"canonical header lacks '# {key}:'", line=n_head, expected=f"a '# {key}: ...' line")
    df = _canonical_body_fast(text)
    if df is None:
        df, line_no = _read_long_csv(path, text)
        _require_columns(path, list(df.columns), COLUMNS, n_head + 1)
        for c in FLOAT_COLUMNS:
            df[c] = _num(df, c, path, line_no)
    # Parse each distinct settlement instant once (a chain has tens of expiries over thousands of rows).
    codes, uniq = pd.factorize(df["expiry"], use_na_sentinel=False)
    try:
        expiry = pd.DatetimeIndex(pd.to_datetime(np.asarray(uniq, dtype=object), utc=True)).tz_convert(NY)
    except (ValueError, TypeError, OverflowError) as exc:
        raise FormatError(path, f"cannot read the expiry column ({exc})", column="expiry",
                          expected="ISO settlement times such as '2025-09-19T16:00:00-04:00'") from exc
    if expiry.isna().any():
        raise FormatError(path, "an expiry is missing", column="expiry", expected="a settlement time on every row")
    df["expiry"] = expiry.take(codes)
    _check_labels(path, df)
    df["flags"] = df["flags"].fillna("")
    try:
        hygiene = {k: int(v) for k, v in json.loads(meta["hygiene"]).items()}
        sm = SnapshotMeta(
            underlying=printable(meta["underlying"]),
            underlying_name=printable(meta.get("underlying_name", "")),
            spot=float(meta["spot"]),
            quote_time=pd.Timestamp(meta["quote_time"]).tz_convert(NY),
            trade_date=pd.Timestamp(meta["trade_date"]).date(),
            valuation_time=pd.Timestamp(meta["valuation_time"]).tz_convert(NY),
            source_format=meta.get("source_format", "canonical"),
            source_file=str(path),
            hygiene=hygiene,
            warnings=tuple(json.loads(meta.get("warnings", "[]"))),
        )
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise FormatError(path, f"bad canonical header value ({exc})", line=n_head, expected="the header volsurf normalize writes") from exc
    check_spot(path, sm.spot)
    _check_strikes(path, df)
    if as_of is not None:
        # re-run the loaders' tail at the new as-of time (trade date, valuation time, expired rows)
        frame = df[list(COLUMNS)].drop(columns=["expiry", "flags"])
        return _finalize(frame, path=path, source_format=sm.source_format, spot=sm.spot, quote_time=sm.quote_time,
                         underlying=sm.underlying, underlying_name=sm.underlying_name, as_of=as_of)
    return Snapshot(frame=_recheck(df[list(COLUMNS)].reset_index(drop=True), sm.hygiene), meta=sm)


def _check_labels(path: str, df: pd.DataFrame) -> None:
    """``expiry_date`` (YYYY-MM-DD, a real date), ``type`` (call/put) and ``root`` (not empty) on every row: the
    analytics group and date-parse them without further checks."""
    dates = pd.Series(pd.unique(df["expiry_date"].astype(str)))
    ok = dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}") & pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce").notna()
    if not ok.all():
        raise FormatError(path, f"cannot read expiry_date {clip(repr(dates[~ok].iloc[0]), 40)}", column="expiry_date",
                          expected="a date YYYY-MM-DD")
    bad_type = ~df["type"].isin(["call", "put"])
    if bad_type.any():
        raise FormatError(path, f"option type {clip(repr(df['type'][bad_type].iloc[0]), 40)}", column="type",
                          expected="'call' or 'put'")
    if (df["root"].astype(str).str.strip() == "").any() or df["root"].isna().any():
        raise FormatError(path, "a row has no root", column="root", expected="the option root (SPX, SPXW, SPY...)")


def _recheck(df: pd.DataFrame, hygiene: dict[str, int]) -> pd.DataFrame:
    """The value rules every loader applies (:func:`~volsurf.io.common._finalize`), applied again to a canonical
    file's rows: a hand-edited file cannot bring a negative price or an implausible open interest past them.
    Rows newly caught get the rule's name in ``flags`` and are added to ``hygiene`` (in place)."""
    masks = _set_aside_unusable(df)
    oi = df["open_interest"].to_numpy()
    with np.errstate(invalid="ignore"):
        masks["bad_oi"] = ~np.isnan(oi) & ~((oi >= 0) & (oi <= OI_MAX))
    df.loc[masks["bad_oi"], "open_interest"] = np.nan
    for name, mask in masks.items():
        if mask.any():
            hygiene[name] = int(hygiene.get(name, 0)) + int(mask.sum())
            old = df.loc[mask, "flags"].astype(str)
            df.loc[mask, "flags"] = np.where(old == "", name, old + ";" + name)
    return df
