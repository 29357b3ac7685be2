"""Loading option-chain files into a normalized :class:`~volsurf.market.snapshot.Snapshot`.

Formats are detected by content, never by file name (see :mod:`volsurf.io.detect`). One module per format:
:mod:`~volsurf.io.cboe_csv`, :mod:`~volsurf.io.yfinance`, :mod:`~volsurf.io.datashop`,
:mod:`~volsurf.io.optionsdx`, :mod:`~volsurf.io.canonical`, :mod:`~volsurf.io.cboe_json`,
:mod:`~volsurf.io.schwab_json`; shared parsing in :mod:`~volsurf.io.common` and :mod:`~volsurf.io.dates`;
folders of snapshots (skip reasons, duplicate downloads, trading-date order) in :mod:`~volsurf.io.collect`.
"""

from volsurf.io.canonical import write_canonical
from volsurf.io.detect import detect_format, expand_paths, load, load_all, load_many

__all__ = ["detect_format", "expand_paths", "load", "load_all", "load_many", "write_canonical"]
