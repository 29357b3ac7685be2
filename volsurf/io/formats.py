"""Former home of the chain loaders, kept as a thin re-export while imports move to :mod:`volsurf.io`.

The loaders now live one per concern in :mod:`volsurf.io` (``detect``, ``common``, ``dates``, ``cboe_csv``,
``yfinance``, ``datashop``, ``optionsdx``, ``canonical``, ``cboe_json``, ``schwab_json``). Import from
:mod:`volsurf.io` instead; this module goes away once every caller does.
"""

from __future__ import annotations

from volsurf.io.canonical import CANONICAL_FLOAT_FORMAT, CANONICAL_MAGIC, write_canonical
from volsurf.io.cboe_csv import CBOE_HEADER
from volsurf.io.common import (
    MISSING_TOKENS,
    VENDOR_IV_PLACEHOLDER,
    WEEKLY_SUFFIXES,
    contract_ids,
    parse_occ_symbols,
)
from volsurf.io.dates import parse_cboe_date_line
from volsurf.io.detect import LOADERS, detect_format, expand_paths, load, load_all, load_many

__all__ = [
    "CANONICAL_FLOAT_FORMAT",
    "CANONICAL_MAGIC",
    "CBOE_HEADER",
    "LOADERS",
    "MISSING_TOKENS",
    "VENDOR_IV_PLACEHOLDER",
    "WEEKLY_SUFFIXES",
    "contract_ids",
    "detect_format",
    "expand_paths",
    "load",
    "load_all",
    "load_many",
    "parse_cboe_date_line",
    "parse_occ_symbols",
    "write_canonical",
]
