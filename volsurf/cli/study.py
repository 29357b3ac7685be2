"""``volsurf study``: event studies on daily series (``volsurf study quarter-end``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from volsurf.cli.common import emit, format_option, output_option, plot_dir_option
from volsurf.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

    from volsurf.history.study import SeriesInput

#: Value column used when a file has one (Cboe's OHLC histories), else the only numeric column.
DEFAULT_COLUMN = "CLOSE"


def _split_spec(spec: str) -> tuple[str, str | None, str]:
    """``FILE[:COLUMN][:log]`` -> (file, column or None, transform).

    The file is the longest ``:``-separated prefix that exists on disk, so paths with colons still work.
    """
    parts = spec.split(":")
    for cut in range(len(parts), 0, -1):
        head = ":".join(parts[:cut])
        if Path(head).exists() or cut == 1:
            rest = parts[cut:]
            break
    transform = "level"
    if rest and rest[-1].strip().lower() == "log":
        transform = "log"
        rest = rest[:-1]
    if len(rest) > 1:
        raise ParameterError(f"{spec!r}: too many ':' parts", "use FILE, FILE:COLUMN or FILE:COLUMN:log")
    column = rest[0].strip() if rest and rest[0].strip() else None
    return head, column, transform


def _load(path: str, column: str | None, default_column: str | None) -> pd.Series:
    from volsurf.io.series import read_dated_series

    prefer = (default_column,) if default_column else (DEFAULT_COLUMN,)
    return read_dated_series(path, prefer=prefer, what="value", column=column, missing="drop")


def _inputs(files: tuple[str, ...], ratios: tuple[str, ...], column: str | None) -> list[SeriesInput]:
    from volsurf.history.study import SeriesInput, ratio_series

    out = []
    for spec in files:
        path, col, transform = _split_spec(spec)
        s = _load(path, col, column)
        name = Path(path).stem if col is None else f"{Path(path).stem}:{s.name}"
        out.append(SeriesInput(name, str(s.name), s, transform))
    for spec in ratios:
        parts = spec.split(":")
        cut = next((k for k in range(1, len(parts)) if Path(":".join(parts[:k])).exists()), None)
        if cut is None:
            raise ParameterError(f"--ratio {spec!r}: expected A.csv:B.csv with both files present")
        a, b = ":".join(parts[:cut]), ":".join(parts[cut:])
        sa, sb = _load(a, None, column), _load(b, None, column)
        name = f"{Path(a).stem}/{Path(b).stem}"
        out.append(SeriesInput(name, f"{sa.name}/{sb.name}", ratio_series(sa, sb, name), "level"))
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@click.group("study")
def study_cmd() -> None:
    """Event studies on daily series.

    \b
    Example:
      volsurf study quarter-end SKEW_History.csv VIX_History.csv --ratio VIX9D_History.csv:VIX3M_History.csv
    """


@study_cmd.command("quarter-end")
@click.argument("files", nargs=-1)
@click.option(
    "--column",
    default=None,
    help=f"Value column for files given without ':COLUMN' [default: {DEFAULT_COLUMN} when present, else the "
    "only numeric column].",
)
@click.option(
    "--ratio",
    "ratios",
    multiple=True,
    help="A.csv:B.csv: study the derived series A/B on their common dates (e.g. VIX9D/VIX3M). Repeatable.",
)
@click.option("--lookback", default=10, show_default=True, type=int, help="N: change from the N-th session before.")
@click.option("--horizon", default=10, show_default=True, type=int, help="Sessions after the event in the path.")
@click.option(
    "--resamples", default=None, type=int, help="Bootstrap resamples and permutations [default: 5000]."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random generator.")
@click.option("--paths", "show_paths", is_flag=True, help="Print the mean paths instead of the summary table.")
@plot_dir_option()
@format_option()
@output_option()
def quarter_end_cmd(
    files: tuple[str, ...],
    column: str | None,
    ratios: tuple[str, ...],
    lookback: int,
    horizon: int,
    resamples: int | None,
    seed: int,
    show_paths: bool,
    plot_dir: str | None,
    fmt: str,
    output: str | None,
) -> None:
    """Do daily series move differently into quarter-ends than into other month-ends?

    Each FILE is a daily CSV (a date column and value columns: Cboe MM/DD/YYYY histories, FRED files with '.'
    for missing, ...), written FILE, FILE:COLUMN, or FILE:COLUMN:log (study the natural log, e.g. of a
    price). For each event day T0 (last NYSE session of a quarter; of every other month; of a year; the
    quarterly expiration, third Friday of Mar/Jun/Sep/Dec or the session before), delta = value(T0) -
    value(T-N), N sessions earlier (--lookback); events missing either value are dropped. Reported per
    series: mean delta and count per event set, quarter-end minus other month-end difference, its seeded
    bootstrap 95% interval, a two-sided permutation p-value and Benjamini-Hochberg q-values across the
    series of the run. --plot writes the paths (value(T+j) - value(T-N), j = -N..H) as
    quarter_end_<series>.png.

    \b
    Example:
      volsurf study quarter-end cboe_indices/SKEW_History.csv
      volsurf study quarter-end VIX_History.csv put_call/cboe_put_call_ratios_2019_2026.csv:INDEX_PUT_CALL_RATIO
      volsurf study quarter-end spy_daily_1993_2024.csv:close:log treasury_yields/DGS10.csv --format json
      volsurf study quarter-end --ratio VIX9D_History.csv:VIX3M_History.csv --plot charts/
      volsurf study quarter-end SKEW_History.csv --paths --format csv -o skew_paths.csv
    """
    from volsurf.history.study import DEFAULT_RESAMPLES, quarter_end_studies

    if not files and not ratios:
        raise ParameterError("no series given", "pass one or more daily CSV files (or --ratio A.csv:B.csv)")
    n_res = DEFAULT_RESAMPLES if resamples is None else resamples
    results = quarter_end_studies(
        _inputs(files, ratios, column),
        lookback=lookback,
        horizon=horizon,
        n_bootstrap=n_res,
        n_permutations=n_res,
        seed=seed,
    )
    written: list[str] = []
    if plot_dir:
        from volsurf._paths import output_dir, safe_stem
        from volsurf.plots import save_figure
        from volsurf.plots.study_plots import plot_quarter_end_paths

        for r in results:
            axes = plot_quarter_end_paths(**r.chart_data())
            out = output_dir(plot_dir, "plot folder")
            written += save_figure(axes[0], out / f"quarter_end_{safe_stem(_slug(r.name))}.png")
    header = {
        "statistic": f"delta = value(T0) - value(T-{lookback}), T-{lookback} the {lookback}th NYSE session before",
        "difference": "mean delta at quarter-ends minus mean delta at other month-ends",
        "interval": f"bootstrap 95% ({n_res} resamples of events, seed {seed})",
        "p_value": f"two-sided permutation test ({n_res} relabellings); q = Benjamini-Hochberg across series",
    }
    if written:
        header["charts"] = ", ".join(written)
    obj = {**header, "lookback": lookback, "horizon": horizon, "series": [r.to_dict() for r in results]}
    if show_paths:
        records = [row for r in results for row in r.path_records()]
    else:
        records = [r.summary_record() for r in results]
    emit(fmt, json_obj=obj, records=records, header=header, output=output)
