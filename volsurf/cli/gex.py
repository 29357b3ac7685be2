"""``volsurf gex``: dealer gamma exposure, the net GEX profile, the gamma flip and the walls of one chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from volsurf.cli.common import as_of_option, emit, format_option, output_option, plot_dir_option

BY_STRIKE_COLUMNS = ["strike", "call_gex", "put_gex", "net_gex"]
BUCKET_COLUMNS = ["bucket", "expiries", "contracts", "open_interest", "call_gex", "put_gex", "net_gex", "dex"]
_ASSUMPTIONS = (
    "dealer_long_calls_short_puts",
    "dealer_short_calls_long_puts",
    "dealer_short_all",
    "dealer_long_all",
)


def _bn(x: float | None) -> float | None:
    return None if x is None else x / 1e9


def _save(ax: Any, path: Path) -> str:
    from volsurf.plots import save_figure

    return save_figure(ax, path, dpi=110)[0]


def _plots(rep: Any, plot_dir: str) -> list[str]:
    from volsurf._paths import output_dir, safe_stem
    from volsurf.plots.gex_plots import plot_gex_by_strike, plot_gex_profile

    out = output_dir(plot_dir, "plot folder")
    stem = safe_stem(f"{rep.underlying}_{rep.trade_date.isoformat()}")
    lo, hi = float(rep.profile_spots[0]), float(rep.profile_spots[-1])
    t = rep.by_strike
    common = {"trade_date": rep.trade_date.isoformat(), "underlying": rep.underlying,
              "assumption": rep.assumption.name}
    ax = plot_gex_by_strike(t["strike"], t["call_gex"], t["put_gex"], t["net_gex"], spot=rep.spot,
                            flip=rep.flip.flip, strike_range=(lo, hi), **common)
    written = [_save(ax, out / f"{stem}_gex_by_strike.png")]
    later = None
    if rep.profile_later is not None:
        later = (f"net GEX at {rep.profile_time:%Y-%m-%d %H:%M}", rep.profile_later)
    ax = plot_gex_profile(rep.profile_spots, rep.profile_net, spot=rep.spot, flip=rep.flip.flip,
                          by_bucket=rep.profile_by_bucket if len(rep.profile_by_bucket) > 1 else None,
                          later=later, **common)
    written.append(_save(ax, out / f"{stem}_gex_profile.png"))
    return written


def _header(d: dict[str, Any]) -> dict[str, Any]:
    v = d["vendor_gamma_comparison"]
    rng = d["gamma_flip_range"]
    return {
        "underlying": d["underlying"],
        "trade_date": d["trade_date"],
        "valuation_time": d["valuation_time"],
        "spot": d["spot"],
        "spot_source": d["spot_source"],
        "net_gex_unavailable": d["net_gex_unavailable_reason"],
        "assumption": d["assumption"],
        "vol_model": d["vol_model"],
        "expiries": ",".join(d["expiries"]),
        "units": "GEX in $bn per 1% move; DEX in $bn notional; vanna $bn delta per vol point; charm $bn delta per day",
        "net_gex_bn": _bn(d["net_gex"]),
        "call_gex_bn": _bn(d["call_gex"]),
        "put_gex_bn": _bn(d["put_gex"]),
        "net_gex_vendor_gamma_bn": _bn(v["net_gex_vendor"]),
        "dex_bn": _bn(d["dex"]),
        "vanna_exposure_bn": _bn(d["vanna_exposure"]),
        "charm_exposure_bn": _bn(d["charm_exposure"]),
        "gamma_flip": d["gamma_flip"],
        "gamma_flip_reason": d["gamma_flip_reason"],
        "gamma_flip_crossings": d["gamma_flip_crossings"],
        "gamma_flip_range": f"{rng[0]:,.2f} .. {rng[1]:,.2f}" if rng else None,
        "regime_robust": d["regime_robust"],
        "call_wall": d["call_wall"],
        "put_wall": d["put_wall"],
        "largest_abs_gex_strike": d["largest_abs_gex_strike"],
        "open_interest_without_iv_share": d["coverage"]["open_interest_without_iv_fraction"],
    }


@click.command("gex")
@click.argument("file", type=click.Path(dir_okay=False))
@format_option()
@output_option()
@plot_dir_option()
@click.option("--expiries", default="all", show_default=True,
              help="all, or a comma list of 0dte, this_week, quarterly, monthly, longer.")
@click.option("--assumption", type=click.Choice(_ASSUMPTIONS), default=_ASSUMPTIONS[0], show_default=True,
              help="Dealer positioning: sign of the dealer position in calls and puts.")
@click.option("--vol", "vol_model", type=click.Choice(["surface", "flat"]), default="surface", show_default=True,
              help="Sticky-strike vol of the profile: the fitted arbitrage-free surface (default) or each "
                   "option's own mid IV held flat (faster; no surface fit).")
@click.option("--range", "width", type=click.FloatRange(0.01, 0.9), default=0.15, show_default=True,
              help="Profile half-width as a fraction of spot (0.15 = +/-15%).")
@click.option("--points", type=click.IntRange(2, 100_000), default=401, show_default=True,
              help="Spot points of the profile.")
@click.option("--eod", is_flag=True, help="Also compute the profile at the next session close (end of day).")
@click.option("--multiplier", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Contract multiplier (100 for SPX/SPY/NDX/XSP).")
@click.option("--robustness/--no-robustness", default=True, show_default=True,
              help="Recompute net GEX, flip and walls under every assumption and bid/ask IVs.")
@as_of_option()
def gex_cmd(file: str, fmt: str, output: str | None, plot_dir: str | None, expiries: str, assumption: str,
            vol_model: str, width: float, points: int, eod: bool, multiplier: float, robustness: bool,
            as_of: str | None) -> None:
    """Dealer gamma exposure of chain FILE: net GEX (total, by strike, by expiry bucket), DEX, vanna and
    charm exposure, the net GEX profile over hypothetical spots, the gamma flip with its range across
    assumptions, and the call/put walls. Dollar figures are USD per 1% move of the underlying (table: $bn).

    \b
    Example:
      volsurf gex spx_quotedata.csv
      volsurf gex spx_quotedata.csv --expiries 0dte,this_week --format json
      volsurf gex spx_quotedata.csv --plot charts/ --eod
    """
    from volsurf.analytics.gex_report import gex_report, surface_vol
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich

    enriched = enrich(load(file, as_of=as_of))
    vol = None
    if vol_model == "surface":
        from volsurf.surface.summary import fit_from_enriched

        vol = surface_vol(fit_from_enriched(enriched))
    rep = gex_report(enriched, assumption=assumption, expiries=expiries, vol=vol, width=width, n_points=points,
                     multiplier=multiplier, later_time="eod" if eod else None, robustness=robustness)
    d = rep.to_dict()
    if fmt == "json":
        emit(fmt, json_obj=d, output=output)
    elif fmt == "csv":
        emit(fmt, json_obj=d, records=d["by_strike"], columns=BY_STRIKE_COLUMNS, output=output)
    else:
        from volsurf.cli.output import key_values_table, records_table, write_text

        lo, hi = float(rep.profile_spots[0]), float(rep.profile_spots[-1])
        near = [
            {c: (r[c] / 1e9 if c != "strike" else r[c]) for c in BY_STRIKE_COLUMNS}
            for r in d["by_strike"]
            if lo <= r["strike"] <= hi and (r["call_gex"] or r["put_gex"])
        ]
        buckets = [{c: (r[c] / 1e9 if c.endswith("gex") or c == "dex" else r[c]) for c in BUCKET_COLUMNS}
                   for r in d["by_bucket"]]
        scen = [{"assumption": s["assumption"], "vol": s["vol"], "timing": s["timing"], "net_gex_bn": _bn(s["net_gex"]),
                 "gamma_flip": s["gamma_flip"], "call_wall": s.get("call_wall"), "put_wall": s.get("put_wall")}
                for s in d["robustness"]]
        parts = [
            key_values_table(_header(d)),
            "By expiry bucket ($bn per 1% move; dex $bn):\n" + records_table(buckets, BUCKET_COLUMNS),
        ]
        if scen:
            parts.append("Robustness scenarios:\n" + records_table(scen))
        parts.append(f"By strike, {lo:,.0f}..{hi:,.0f} ($bn per 1% move):\n" + records_table(near, BY_STRIKE_COLUMNS))
        write_text("\n\n".join(parts), output)
    if plot_dir:
        for p in _plots(rep, plot_dir):
            click.echo(f"wrote {p}", err=True)
