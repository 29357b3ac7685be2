"""Charts (matplotlib, drawing only), and one helper to write a drawn chart to disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def save_figure(obj: Any, path: str | Path, *, dpi: int = 100, formats: Sequence[str] = ("png",)) -> list[str]:
    """Write the Figure of ``obj`` (a Figure or an Axes) as ``path`` with each suffix in ``formats``.

    Lays the figure out (tight layout unless it already has a layout engine), creates the folder (or raises a
    one-line error why it cannot), writes each file whole or not at all (a temporary file renamed into place),
    releases the figure's artists afterwards, and returns the written paths.
    """
    fig = obj if hasattr(obj, "savefig") else obj.get_figure()
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    from volsurf._paths import atomic_path

    base = Path(path)
    written = []
    for ext in formats:
        out = base.with_suffix(f".{ext}")
        with atomic_path(out, "chart") as tmp:  # a chart is on disk whole or not at all
            fig.savefig(tmp, dpi=dpi, format=ext)
        written.append(str(out))
    fig.clf()
    return written
