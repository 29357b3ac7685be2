"""A folder of snapshots as users have it: empty file, the same download under another date format, weekend,
holiday and pre-market copies. ``load_many`` and ``track`` name every skipped file and keep trading-date order."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REAL, require_shared

from volsurf.errors import DataQualityWarning
from volsurf.io import load, load_many
from volsurf.io.collect import collect, screen_files
from volsurf.io.dates import date_value_from_line

RALPH = REAL / "cboe_ralph-e-boy_gamma-chart"
#: Real SPY downloads (SOURCES.md): after-close, holiday (Labor Day 2025-09-01) and two of one day (2025-05-06).
ORIGINALS = ["2025-04-30_2035", "2025-05-01_1649", "2025-05-06_1809_truncated", "2025-05-06_1814",
             "2025-06-09_1652", "2025-09-01_1850"]


def _with_date(src: Path, dst: Path, value: str) -> Path:
    lines = src.read_text(encoding="utf-8").split("\n")
    row = next(i for i, ln in enumerate(lines) if date_value_from_line(ln) is not None)
    lines[row] = f'"Date: {value}",Bid: 1,Ask: 2,Size: 1*1,Volume: 0'
    dst.write_text("\n".join(lines), encoding="utf-8")
    return dst


def _folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The originals plus traps; returns the folder and {trap file name: what it is}."""
    d = tmp_path / "downloads"
    d.mkdir()
    for name in ORIGINALS:
        shutil.copy(RALPH / name / "quotedata.csv", d / f"{name}.csv")
    traps = {}
    (d / "empty.csv").write_bytes(b"")
    traps["empty.csv"] = "empty"
    # the 2025-06-09 16:52 EDT download, saved again by a German browser (same instant, same quotes)
    _with_date(RALPH / "2025-06-09_1652/quotedata.csv", d / "quotedata (1).csv", "09.06.2025, 22:52 MESZ")
    traps["quotedata (1).csv"] = "duplicate"
    # the same quotes downloaded on the next Saturday: the previous close, relabelled by the listed expiry
    _with_date(RALPH / "2025-06-09_1652/quotedata.csv", d / "spy_saturday.csv", "June 14, 2025 at 10:05 AM EDT")
    traps["spy_saturday.csv"] = "duplicate"
    # the 2025-05-01 after-close quotes downloaded before the next open
    _with_date(RALPH / "2025-05-01_1649/quotedata.csv", d / "spy_premarket.csv", "2 mai 2025 à 08:15 UTC\u22124")
    traps["spy_premarket.csv"] = "duplicate"
    return d, traps


def test_collect_folder(tmp_path: Path):
    require_shared()
    d, traps = _folder(tmp_path)
    col = collect([str(d)])
    skipped = {Path(p).name: why for p, why in col.skipped}
    assert set(skipped) == set(traps)
    assert "empty" in skipped["empty.csv"]
    for name, kind in traps.items():
        if kind == "duplicate":
            assert skipped[name].startswith("duplicate of ")
    # each original once, in trading-date then quote-time order, each as loaded alone
    assert sorted(Path(s.meta.source_file).stem for s in col.snapshots) == sorted(ORIGINALS)
    alone = [load(d / f"{n}.csv") for n in ORIGINALS]
    assert [(s.meta.trade_date, s.meta.quote_time) for s in col.snapshots] == sorted(
        (s.meta.trade_date, s.meta.quote_time) for s in alone
    )
    assert len(col.notes) == 2  # the 06-09 group (3 files) and the 05-01 group (2 files)


def test_load_many_warns_per_skipped_file(tmp_path: Path):
    require_shared()
    d, traps = _folder(tmp_path)
    skipped: list[tuple[str, str]] = []
    with pytest.warns(DataQualityWarning) as rec:
        snaps = load_many([str(d)], skipped=skipped)
    assert len(snaps) == len(ORIGINALS)
    assert {Path(p).name for p, _ in skipped} == set(traps)
    assert any("empty.csv" in str(w.message) for w in rec)
    with pytest.raises(Exception, match="empty"):
        load_many([str(d)], strict=True)


def test_screen_files_matches_collect(tmp_path: Path):
    """The light screening (track) decides like the full loads (load_many)."""
    require_shared()
    d, _ = _folder(tmp_path)
    files, skipped, notes = screen_files([str(d)])
    col = collect([str(d)])
    assert files == [s.meta.source_file for s in col.snapshots]
    assert sorted(skipped) == sorted(col.skipped)
    assert len(notes) == len(col.notes)


def test_track_folder_one_row_per_trading_date(tmp_path: Path):
    require_shared()
    from volsurf.history.track import track

    d, traps = _folder(tmp_path)
    res = track([str(d)], window=3, min_history=2)
    dates = list(res.series["trade_date"])
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    alone = {load(d / f"{n}.csv").meta.trade_date for n in ORIGINALS}
    assert [str(x) for x in sorted(alone)] == [str(x) for x in dates]
    skipped = {Path(p).name: why for p, why in res.skipped}
    # every trap by name, and the earlier of the two 2025-05-06 downloads superseded by the later one
    assert set(traps) <= set(skipped)
    assert "superseded" in skipped["2025-05-06_1809_truncated.csv"]
    assert set(skipped) == set(traps) | {"2025-05-06_1809_truncated.csv"}
