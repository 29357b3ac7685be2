"""Charts (matplotlib, drawing only), and one helper to write a drawn chart to disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def save_figure(obj: Any, path: str | Path, *, dpi: int = 100, formats: Sequence[str] = ("png",)) -> list[str]:
    """Write the Figure of ``obj`` (a Figure or an Axes) as ``path`` with each suffix in ``formats``.

    Lays the figure out (tight layout unless it already has a layout engine), creates the folder, releases
    the figure's artists afterwards, and returns the written paths.
    """
    fig = obj if hasattr(obj, "savefig") else obj.get_figure()
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in formats:
        out = base.with_suffix(f".{ext}")
        fig.savefig(out, dpi=dpi)
        written.append(str(out))
    fig.clf()
    return written
