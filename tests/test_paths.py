"""Safe file names from data (volsurf._paths.safe_stem)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volsurf._paths import safe_stem


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SPX_2026-07-31", "SPX_2026-07-31"), ("../../x", "x"), ("/etc/passwd", "etc_passwd"), ("..", "chain"),
     ("a\x1b[31mb", "a_31mb"), ("C:\\evil", "C_evil")],
)
def test_safe_stem_examples(text: str, expected: str):
    assert safe_stem(text) == expected


@given(st.text(max_size=200))
def test_safe_stem_never_leaves_its_folder(text: str):
    stem = safe_stem(text)
    base = Path("/out")
    assert (base / f"{stem}_x.png").resolve().parent == base
    assert stem and len(stem) <= 80 and ".." not in stem
