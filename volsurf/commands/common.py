"""Options and helpers shared by every CLI command (format, output, loading with a clear error)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from volsurf.output import FORMATS, dumps_json, key_values_table, records_csv, records_table, write_text


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


def output_option(help_text: str = "Write to this file instead of stdout.") -> Callable:
    """``-o/--output PATH``."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help=help_text)


def plot_dir_option() -> Callable:
    """``--plot DIR``: write charts as PNG into DIR."""
    return click.option(
        "--plot", "plot_dir", type=click.Path(file_okay=False), default=None, help="Write charts (PNG) into DIR."
    )


def emit(
    fmt: str,
    *,
    json_obj: Any,
    records: Sequence[Mapping[str, Any]] | None = None,
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
