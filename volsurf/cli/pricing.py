"""``volsurf iv`` and ``volsurf forwards``."""

from __future__ import annotations

from typing import Any

import click

from volsurf.cli.common import as_of_option, emit, format_option, output_option

IV_COLUMNS = [
    "contract", "root", "expiry", "strike", "type", "t", "forward", "discount", "bid", "ask", "mid",
    "iv_bid", "iv_mid", "iv_ask", "iv_status", "otm", "delta", "gamma", "vega", "theta",
    "vendor_iv", "vendor_delta", "vendor_gamma", "open_interest", "volume", "flags",
]
FORWARD_COLUMNS = [
    "expiry", "root", "settlement", "t", "forward", "discount", "rate", "dividend_yield", "atm_iv_quotes", "method",
    "n_pairs", "parity_residual_max",
]


def _records(frame: Any, columns: list[str]) -> list[dict[str, Any]]:
    f = frame[columns].copy()
    if "expiry" in f:
        f["expiry"] = f["expiry"].map(lambda x: x.isoformat())
    return f.to_dict(orient="records")


@click.command("iv")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--rate", type=float, default=None, help="Fallback rate (decimal) where parity cannot give one.")
@click.option("--expiry", "expiry_filter", default=None, help="Only this expiry date (YYYY-MM-DD).")
@click.option("--otm-only", is_flag=True, help="Only the out-of-the-money side (the smile).")
@format_option()
@output_option()
@as_of_option()
def iv_cmd(file: str, rate: float | None, expiry_filter: str | None, otm_only: bool, fmt: str, output: str | None,
           as_of: str | None) -> None:
    """Per-contract implied vols (bid/mid/ask), forwards and greeks for chain FILE.

    Columns: contract, root, expiry (settlement time), strike, type, t (years), forward, discount, iv_bid,
    iv_mid, iv_ask (decimal), iv_status, otm, delta and gamma (per 1 point of spot), vega (per vol point),
    theta (per day), and the vendor's own IV/delta/gamma for comparison.

    \b
    Example:
      volsurf iv sample_chains/spy_2025-06-09_close.csv --format csv -o iv.csv
      volsurf iv chain.csv --expiry 2025-06-20 --otm-only
    """
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich
    from volsurf.pricing.forwards import DEFAULT_RATE

    enriched = enrich(load(file, as_of=as_of), default_rate=DEFAULT_RATE if rate is None else rate)
    f = enriched.frame
    if expiry_filter:
        f = f[f["expiry_date"] == expiry_filter]
    if otm_only:
        f = f[f["otm"]]
    records = _records(f, IV_COLUMNS)
    obj = {"meta": enriched.meta.to_dict(), "assumptions": enriched.assumptions, "contracts": records}
    emit(fmt, json_obj=obj, records=records, columns=IV_COLUMNS if fmt == "csv" else IV_COLUMNS[:16], output=output)


@click.command("forwards")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--rate", type=float, default=None, help="Fallback rate (decimal) where parity cannot give one.")
@format_option()
@output_option()
@as_of_option()
def forwards_cmd(file: str, rate: float | None, fmt: str, output: str | None, as_of: str | None) -> None:
    """Per-expiry implied forward, discount factor, implied rate, implied dividend yield and ATM IV for FILE.

    Forwards come from put-call parity on the chain itself (robust regression of C - P on K near the money);
    the method column says which rule applied (see README, 'Forwards').

    \b
    Example:
      volsurf forwards sample_chains/spx_2026-07-31_close.csv
    """
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich
    from volsurf.pricing.forwards import DEFAULT_RATE

    enriched = enrich(load(file, as_of=as_of), default_rate=DEFAULT_RATE if rate is None else rate)
    records = _records(enriched.expiries, FORWARD_COLUMNS)
    header = {"underlying": enriched.meta.underlying, "spot": enriched.meta.spot,
              "valuation_time": enriched.meta.valuation_time.isoformat()}
    emit(fmt, json_obj={**header, "expiries": records}, records=records, columns=FORWARD_COLUMNS, header=header,
         output=output)
