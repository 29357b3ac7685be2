"""``volsurf inspect`` and ``volsurf normalize``."""

from __future__ import annotations

import click

from volsurf.cli.common import as_of_option, checked_output_file, emit, format_option, output_option


@click.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False))
@format_option()
@output_option()
@as_of_option()
def inspect_cmd(file: str, fmt: str, output: str | None, as_of: str | None) -> None:
    """Summarise a chain FILE: underlying, spot, quote time, trading date, format, contracts, expiries with
    counts, OI and volume totals for calls and puts, and rows flagged by hygiene rule.

    \b
    Example:
      volsurf inspect sample_chains/spx_2026-07-31_close.csv
      volsurf inspect chain.csv --format json
    """
    from volsurf.io import load

    snap = load(file, as_of=as_of)
    summary = snap.summary()
    header = {k: v for k, v in summary.items() if k not in ("expiry_table",)}
    emit(fmt, json_obj=summary, records=summary["expiry_table"], header=header, output=output)


@click.command("normalize")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Canonical CSV to write.",
              callback=checked_output_file)
@format_option()
@as_of_option()
def normalize_cmd(file: str, output: str, fmt: str, as_of: str | None) -> None:
    """Write chain FILE (any supported format) as volsurf's canonical CSV to OUTPUT.

    The canonical file keeps the metadata in '#' header lines and loads back unchanged.

    \b
    Example:
      volsurf normalize quotedata.csv -o spx_canonical.csv
    """
    from volsurf.io import load, write_canonical

    snap = load(file, as_of=as_of)
    write_canonical(snap, output)
    info = {"input": file, "output": output, "contracts": len(snap.frame), "format": snap.meta.source_format}
    emit(fmt, json_obj=info, records=[info], header=None)
