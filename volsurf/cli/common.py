"""Options and helpers shared by every CLI command (format, output, loading with a clear error)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from volsurf.cli.output import FORMATS, dumps_json, key_values_table, records_csv, records_table, write_text


def format_option(default: str = "table") -> Callable:
    """``--format table|json|csv``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=default,
        show_default=True,
        help="Output format.",
    )


def checked_output_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``-o FILE`` checked before any work: its folder made or a one-line error (nothing computed in vain)."""
    if value is None or value == "-" or ctx.resilient_parsing:
        return value
    from volsurf._paths import output_file

    output_file(value)
    return value


def checked_plot_dir(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--plot DIR`` checked before any work: made, or a one-line error why it cannot be."""
    if value is None or ctx.resilient_parsing:
        return value
    from volsurf._paths import output_dir

    output_dir(value, "plot folder")
    return value


def output_option(help_text: str = "Write to this file instead of stdout.") -> Callable:
    """``-o/--output PATH`` (its folder is checked, and made, before the command runs)."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help=help_text,
                        callback=checked_output_file)


def as_of_option() -> Callable:
    """``--as-of TIME``: the chain's as-of time, replacing the file's (required by files that carry none)."""
    return click.option(
        "--as-of",
        "as_of",
        default=None,
        metavar="TIME",
        help="As-of time of the chain, replacing the file's (New York time unless a zone is given, e.g. "
        "'2022-04-01 16:15' or '2022-04-01T20:15Z'). Needed for files without one (older Cboe JSON).",
    )


def plot_dir_option() -> Callable:
    """``--plot DIR``: write charts as PNG into DIR (made, or refused with one line, before the command runs)."""
    return click.option(
        "--plot", "plot_dir", type=click.Path(file_okay=False), default=None, help="Write charts (PNG) into DIR.",
        callback=checked_plot_dir,
    )


def emit(
    fmt: str,
    *,
    json_obj: Any,
    records: Sequence[Mapping[Any, Any]] | None = None,
    columns: Sequence[str] | None = None,
    header: Mapping[str, Any] | None = None,
    output: str | None = None,
) -> None:
    """Render a command's result.

    ``json`` prints ``json_obj``; ``csv`` prints ``records`` as CSV; ``table`` prints ``header`` as key/value
    lines (if given) followed by ``records`` as an aligned table.
    """
    if fmt == "json":
        text = dumps_json(json_obj)
    elif fmt == "csv":
        text = records_csv(records or [], columns)
    else:
        parts = []
        if header:
            parts.append(key_values_table(header))
        if records is not None:
            parts.append(records_table(records, columns))
        text = "\n\n".join(parts)
    write_text(text, output)


def rebalance_options(func: Callable) -> Callable:
    """``--equity-ytd/--bond-ytd`` (returns) or ``--equity-prices/--bond-prices`` (daily price CSVs) and ``--since``."""
    opts = [
        click.option("--equity-ytd", type=float, default=None,
                     help="Equity return since the last rebalance (decimal, 0.12 = 12%)."),
        click.option("--bond-ytd", type=float, default=None, help="Bond return since the last rebalance (decimal)."),
        click.option("--equity-prices", type=click.Path(dir_okay=False), default=None,
                     help="Daily equity price CSV (date, close) to compute the equity return from."),
        click.option("--bond-prices", type=click.Path(dir_okay=False), default=None,
                     help="Daily bond price CSV (date, close) to compute the bond return from."),
        click.option("--since", type=click.Choice(["year", "quarter"]), default="year", show_default=True,
                     help="With price files: returns from the previous year-end or quarter-end close."),
        click.option("--cta-prices", type=click.Path(dir_okay=False), default=None,
                     help="Daily closes of the index for the trend-follower (CTA) model and its alignment flag "
                          "[default: --equity-prices when given]."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def resolve_returns(
    equity_ytd: float | None,
    bond_ytd: float | None,
    equity_prices: str | None,
    bond_prices: str | None,
    since: str,
    trade_date: Any,
) -> tuple[float | None, float | None]:
    """The (equity, bond) returns given on the command line, typed in or computed from the price files."""
    from volsurf.errors import ParameterError

    if (equity_ytd is None) != (bond_ytd is None):
        raise ParameterError("--equity-ytd and --bond-ytd go together", hint="give both returns, or neither")
    if (equity_prices is None) != (bond_prices is None):
        raise ParameterError("--equity-prices and --bond-prices go together", hint="give both files, or neither")
    if equity_prices is not None:
        if equity_ytd is not None:
            raise ParameterError("give returns or price files, not both")
        from volsurf.flows.rebalance import returns_since_rebalance

        assert bond_prices is not None  # checked above: both or neither
        return returns_since_rebalance(equity_prices, bond_prices, trade_date, since)
    return equity_ytd, bond_ytd
