"""Issue 15: an oversized line is a one-line error that costs no more memory than the file."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from conftest import SAMPLES

from volsurf.errors import FormatError
from volsurf.io import load
from volsurf.io.common import MAX_LINE_CHARS


@pytest.mark.parametrize("where", [1, 10])  # the name line of the preamble, a data row
def test_oversized_line_error_costs_no_more_than_the_file(tmp_path: Path, where: int):
    lines = (SAMPLES / "spy_2025-08-29_close.csv").read_text(encoding="utf-8").split("\n")
    lines[where] += "Z" * (20 * 2**20)
    path = tmp_path / "huge.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(FormatError) as err:
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.1 * size, (peak, size)
    msg = err.value.one_line()
    assert f"line {where + 1}" in msg and "bytes long" in msg and len(msg) < 330


def test_json_payload_on_one_line_is_not_a_long_line(tmp_path: Path):
    """A JSON feed is often one long line: the line limit is for text (CSV) chains only."""
    path = tmp_path / "feed.json"
    path.write_text('{"data": {"options": []}, "pad": "' + "x" * (MAX_LINE_CHARS + 10) + '"}', encoding="utf-8")
    with pytest.raises(Exception) as err:
        load(path)
    assert "bytes long" not in str(err.value)
