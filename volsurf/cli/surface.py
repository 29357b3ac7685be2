"""``volsurf surface``: fit the arbitrage-free surface and the SVI/eSSVI parameters of one chain, with charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from volsurf.cli.common import as_of_option, emit, format_option, output_option, plot_dir_option

# Maturities (calendar days) that get their own smile file; the nearest expiry to each, duplicates dropped.
SINGLE_SMILE_DAYS = (7.0, 30.0, 90.0, 365.0)


def _save(fig: Any, out_dir: Path, stem: str, svg: bool) -> list[str]:
    """Write ``stem.png`` (and ``stem.svg``), then release the figure."""
    from volsurf.plots import save_figure

    return save_figure(fig, out_dir / stem, dpi=110, formats=("png", "svg") if svg else ("png",))


def write_surface_plots(surface: Any, *, underlying: str, trade_date: Any, plot_dir: str | Path,
                        svg: bool = False, smile_days: tuple[float, ...] = SINGLE_SMILE_DAYS) -> list[str]:
    """Write the surface charts into ``plot_dir`` and return their paths.

    Files: ``smiles.png`` (grid of representative expiries), ``smile_<expiry>_<root>.png`` for the expiries
    nearest ``smile_days`` (default 7, 30, 90 and 365 calendar days; duplicates once), ``iv_heatmap.png``,
    ``atm_term_structure.png``; the same as ``.svg`` with ``svg=True``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    from matplotlib.figure import Figure

    from volsurf._paths import output_dir, safe_stem
    from volsurf.plots.surface_plots import (
        plot_atm_term_structure,
        plot_iv_heatmap,
        plot_smile,
        plot_smiles_grid,
        select_slices,
    )

    out = output_dir(plot_dir, "plot folder")
    common = {"underlying": underlying, "trade_date": trade_date}
    written = _save(plot_smiles_grid(surface, **common), out, "smiles", svg)
    for i in select_slices(surface, targets=smile_days, max_panels=max(len(smile_days), 1), min_panels=1):
        sl = surface.slices[i]
        fig = Figure(figsize=(8.5, 5.2))
        plot_smile(sl, fig.add_subplot(), surface=surface, show_essvi=True, **common)
        tag = safe_stem(sl.label.strip().replace(" ", "_").replace("/", "-"), default="slice")
        written += _save(fig, out, f"smile_{tag}", svg)
    fig = Figure(figsize=(9.0, 5.8))
    plot_iv_heatmap(surface, fig.add_subplot(), **common)
    written += _save(fig, out, "iv_heatmap", svg)
    fig = Figure(figsize=(8.5, 5.0))
    plot_atm_term_structure(surface, fig.add_subplot(), **common)
    written += _save(fig, out, "atm_term_structure", svg)
    return written


def _k_range(text: str | None) -> tuple[float, float] | None:
    """``LO,HI`` (log-moneyness) -> floats; a one-line usage error otherwise."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"expected LO,HI (two numbers), got {text!r}", param_hint="--k-range") from None
    if not lo < hi:
        raise click.BadParameter(f"LO must be below HI, got {text!r}", param_hint="--k-range")
    return lo, hi


@click.command("surface")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@format_option()
@output_option()
@plot_dir_option()
@click.option("--svg", is_flag=True, help="With --plot: also write each chart as SVG.")
@click.option("--min-days", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Leave out expiries with at most this many calendar days to expiry.")
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False), default=None,
              help="Write the surface on a (t, k) grid to this CSV: t, expiry, k = ln(K/F), strike, forward, iv, "
                   "total_variance, call_normalised (the grid the audit samples).")
@click.option("--k-range", default=None, metavar="LO,HI",
              help="Grid log-moneyness range (default: every quoted strike, the strike domain and 0.25 beyond).")
@click.option("--k-step", type=click.FloatRange(min=0.0, min_open=True), default=0.002, show_default=True,
              help="Grid log-moneyness step.")
@click.option("--times", type=click.Choice(["listed", "dense"]), default="dense", show_default=True,
              help="Grid times: listed expiries, or with a time halfway between each pair (and before/after).")
@click.option("--audit", is_flag=True,
              help="Audit the surface through its query API on the grid (butterfly, monotonicity, calendar, IV "
                   "jumps, solver status) and add it to the report.")
@as_of_option()
def surface_cmd(file: str, fmt: str, output: str | None, plot_dir: str | None, svg: bool, min_days: float,
                grid_path: str | None, k_range: str | None, k_step: float, times: str, audit: bool,
                as_of: str | None) -> None:
    """Fit the arbitrage-free implied-vol surface of one chain FILE and report, per expiry, the forward,
    the ATM vol, the raw-SVI parameters and how well each layer fits the bid/ask quotes.

    Columns: rmse_vol_points / inside_band_share = the arbitrage-free (market-consistent) surface, svi_* =
    raw SVI; butterfly/calendar_violations = of the fitted surface on a dense strike grid (0 expected),
    raw_* = of the quotes themselves. Vols are decimal (0.15 = 15 vol points). The header gives the
    medians over expiries of 7 days or more.

    \b
    Example:
      volsurf surface sample_chains/spx_2026-07-31_close.csv
      volsurf surface sample_chains/spx_2026-07-31_close.csv --format json -o surface.json --plot charts/ --svg
      volsurf surface sample_chains/spx_2026-07-31_close.csv --grid surface_grid.csv --audit
    """
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich
    from volsurf.surface.summary import (
        CSV_COLUMNS,
        TABLE_COLUMNS,
        fit_from_enriched,
        header_block,
        surface_summary,
        table_rows,
    )

    if svg and not plot_dir:
        raise click.UsageError("--svg needs --plot DIR")
    enriched = enrich(load(file, as_of=as_of))
    surface = fit_from_enriched(enriched, min_days=min_days)
    report = None
    if grid_path or audit:
        from volsurf.surface.audit import audit_surface, surface_grid

        grid = surface_grid(surface, _k_range(k_range), k_step, times)
        if grid_path:
            from volsurf._paths import atomic_path

            with atomic_path(grid_path, "grid file") as tmp:  # whole or not at all
                n = grid.write_csv(str(tmp))
            click.echo(f"wrote {grid_path} ({n} rows)", err=True)
        if audit:
            report = audit_surface(surface, grid)
    summary = surface_summary(surface, enriched, audit=report)
    if fmt == "csv":
        emit(fmt, json_obj=summary, records=table_rows(summary, CSV_COLUMNS), columns=CSV_COLUMNS, output=output)
    else:
        emit(fmt, json_obj=summary, records=table_rows(summary, TABLE_COLUMNS), columns=TABLE_COLUMNS,
             header=header_block(summary), output=output)
    if plot_dir:
        paths = write_surface_plots(surface, underlying=str(enriched.meta.underlying),
                                    trade_date=enriched.meta.trade_date, plot_dir=plot_dir, svg=svg)
        for p in paths:
            click.echo(f"wrote {p}", err=True)
