"""Issue 15: bad, hostile, interrupted input. One test per defect the adversarial run found.

The contract: every command, on any file, either works or prints exactly one line ``Error: ...`` (about 300
characters at most) on stderr and exits 2, with no traceback and no warning before it; nothing is written
outside the folder the user chose; control characters from a file never reach the terminal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REAL, ROOT, SAMPLES, require_shared, run_cli

SPY = SAMPLES / "spy_2025-08-29_close.csv"
LINES = SPY.read_text(encoding="utf-8").split("\n")
HEADER_AT = next(i for i, ln in enumerate(LINES) if ln.startswith("Expiration Date,Calls"))
FIRST_ROW = HEADER_AT + 1


def _write(tmp_path: Path, lines: list[str], name: str = "chain.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines), encoding="utf-8")
    return p


def _with_spot(tmp_path: Path, spot: str) -> Path:
    lines = list(LINES)
    lines[1] = lines[1].replace("Last: 645.05", f"Last: {spot}")
    assert lines[1] != LINES[1]
    return _write(tmp_path, lines)


def _with_field(tmp_path: Path, row: int, col: int | tuple[int, ...], value: str, *, every_row: bool = False) -> Path:
    lines = list(LINES)
    rows = range(FIRST_ROW, len(lines)) if every_row else [FIRST_ROW + row]
    for i in rows:
        parts = lines[i].split(",")
        if len(parts) == 22:
            for c in (col,) if isinstance(col, int) else col:
                parts[c] = value
            lines[i] = ",".join(parts)
    return _write(tmp_path, lines)


def one_error_line(res, *, code: int = 2) -> str:
    """The run failed the one allowed way: exit ``code``, one ``Error:`` line of at most ~330 characters."""
    assert res.exit_code == code, (res.exit_code, res.stdout[-500:], res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert lines[0].startswith("Error: ") and "Traceback" not in res.stderr
    assert len(lines[0]) <= 340, len(lines[0])
    return lines[0]


# ------------------------------------------------------------------ tracebacks instead of one-line errors


@pytest.mark.parametrize("command", ["surface", "gex", "skew", "forwards", "iv", "inspect"])
def test_spot_zero_is_one_error_line(tmp_path: Path, command: str):
    line = one_error_line(run_cli(command, _with_spot(tmp_path, "0")))
    assert "spot 0" in line and "not a positive finite number" in line


def test_spot_zero_report_is_one_error_line_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "out"
    one_error_line(run_cli("report", _with_spot(tmp_path, "0"), "-o", out))
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".volsurf")]


@pytest.mark.parametrize("spot", ["NaN", "inf", "-inf", "-645.05"])
@pytest.mark.parametrize("command", ["inspect", "forwards", "surface", "skew", "gex"])
def test_non_finite_or_negative_spot_fails_the_same_in_every_command(tmp_path: Path, spot: str, command: str):
    """`spot NaN` failed in some commands and not others; non-finite spots printed numpy warnings first."""
    line = one_error_line(run_cli(command, _with_spot(tmp_path, spot)))
    assert "not a positive finite number" in line


def test_long_name_line_in_the_preamble(tmp_path: Path):
    lines = list(LINES)
    lines[1] = "X" * 200_000 + lines[1]
    line = one_error_line(run_cli("inspect", _write(tmp_path, lines)))
    assert "line 2" in line and "XXXXX" not in line


def test_long_field_in_a_row_on_the_slow_path(tmp_path: Path):
    lines = list(LINES)
    lines[FIRST_ROW + 3] += ',"' + "Y" * 200_000 + '"'
    line = one_error_line(run_cli("gex", _write(tmp_path, lines)))
    assert f"line {FIRST_ROW + 4}" in line and "YYYYY" not in line


def test_field_under_the_line_limit_is_quoted_truncated(tmp_path: Path):
    """A bad value of 90,000 characters (the line is allowed) is quoted in the error, cut short."""
    line = one_error_line(run_cli("inspect", _with_field(tmp_path, 2, 6, "Z" * 90_000)))
    assert "cannot read" in line and "..." in line


def test_huge_line_is_not_echoed(tmp_path: Path):
    """A 52 MB line was echoed whole into the error message (here 3 MB: the same path)."""
    lines = list(LINES)
    lines[FIRST_ROW + 5] += "Z" * 3_000_000
    line = one_error_line(run_cli("skew", _write(tmp_path, lines)))
    assert f"line {FIRST_ROW + 6}" in line and "bytes long" in line


@pytest.mark.parametrize("where", ["under_a_file", "missing"])
@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_output_path_under_a_file_or_missing(tmp_path: Path, where: str, option: str):
    if where == "under_a_file":
        (tmp_path / "taken").write_text("x")
        target = tmp_path / "taken" / "sub" / ("out.json" if option == "-o" else "charts")
    else:
        target = tmp_path / "new" / "deeper" / ("out.json" if option == "-o" else "charts")
    res = run_cli("gex", SPY, "--no-robustness", "--format", "json", option, target)
    if where == "under_a_file":
        line = one_error_line(res)
        assert "taken" in line
        assert res.stdout == ""  # checked before any work: no table printed, then an error
    else:  # a missing folder is made
        assert res.exit_code == 0, res.stderr
        assert target.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_output_folder_not_writable(tmp_path: Path, option: str):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    target = ro / ("out.json" if option == "-o" else "charts")
    one_error_line(run_cli("skew", SPY, option, target))


def test_non_finite_prices_work_without_numpy_warnings(tmp_path: Path):
    """An infinite ask and a NaN bid: the row is counted (bad_price), the command works, nothing else printed.
    (The tests run with warnings as errors, so a numpy RuntimeWarning would fail the run.)"""
    lines = list(LINES)
    for r in (10, 20, 30):
        parts = lines[FIRST_ROW + r].split(",")
        parts[4], parts[5], parts[15] = "nan", "inf", "-3"
        lines[FIRST_ROW + r] = ",".join(parts)
    path = _write(tmp_path, lines)
    res = run_cli("inspect", path, "--format", "json")
    assert res.exit_code == 0 and res.stderr == ""
    assert json.loads(res.stdout)["flagged"]["bad_price"] == 6
    res = run_cli("gex", path, "--no-robustness", "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert "Traceback" not in res.stderr and "RuntimeWarning" not in res.stderr


@pytest.mark.parametrize("kind", ["directory", "unreadable"])
@pytest.mark.parametrize("command", ["inspect", "surface", "gex", "report"])
def test_directory_or_unreadable_input_is_one_line(tmp_path: Path, kind: str, command: str):
    if kind == "directory":
        target = tmp_path
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads unreadable files")
        target = tmp_path / "secret.csv"
        target.write_text(SPY.read_text())
        target.chmod(0)
    args = [command, target] + (["-o", tmp_path / "out"] if command == "report" else [])
    one_error_line(run_cli(*args))


def test_usage_errors_are_one_line():
    one_error_line(run_cli("gex", SPY, "--bogus"))
    one_error_line(run_cli("inspect"))


@pytest.mark.parametrize("date", ["May 1, 2099 at 4:49 PM EDT", "May 1, 1900 at 4:49 PM EDT"])
def test_quote_date_outside_the_exchange_calendar_is_one_line(tmp_path: Path, date: str):
    """Found by the fuzz suite: a Date line of 2099 raised exchange_calendars' DateOutOfBounds."""
    lines = list(LINES)
    lines[2] = f'"Date: {date}",Bid: 644.93'
    path = _write(tmp_path, lines)
    line = one_error_line(run_cli("skew", path))
    assert "outside the exchange calendar" in line or "no such date" in line
    one_error_line(run_cli("track", path, "--strict"))


def test_canonical_expiry_date_that_is_no_date_is_one_line(tmp_path: Path):
    """Found by the fuzz suite: a canonical file's expiry_date '0.0001' reached pandas' date parsing in skew."""
    canon = tmp_path / "canon.csv"
    assert run_cli("normalize", SPY, "-o", canon).exit_code == 0
    lines = canon.read_text().split("\n")
    header = next(i for i, ln in enumerate(lines) if ln.startswith("contract,"))
    col = lines[header].split(",").index("expiry_date")
    parts = lines[header + 1].split(",")
    parts[col] = "0.0001"
    lines[header + 1] = ",".join(parts)
    canon.write_text("\n".join(lines))
    line = one_error_line(run_cli("skew", canon))
    assert "expiry_date" in line


# ---------------------------------------------------------------------------------- silently wrong


def test_open_interest_1e300_is_counted_not_used(tmp_path: Path):
    path = _with_field(tmp_path, 5, 10, "1e300")
    res = run_cli("gex", path, "--no-robustness", "--format", "json")
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert abs(d["net_gex"]) < 1e12  # dollars: was 1.3e295 $bn
    assert json.loads(run_cli("inspect", path, "--format", "json").stdout)["flagged"]["bad_oi"] == 1


def test_negative_open_interest_everywhere_is_counted_and_net_gex_unavailable(tmp_path: Path):
    path = _with_field(tmp_path, 0, (10, 21), "-5", every_row=True)
    summary = json.loads(run_cli("inspect", path, "--format", "json").stdout)
    assert summary["flagged"]["bad_oi"] == summary["contracts"]
    res = run_cli("gex", path, "--no-robustness", "--format", "json")
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["net_gex"] is None and "bad_oi hygiene rule" in d["net_gex_unavailable_reason"]


@pytest.mark.parametrize("command", ["forwards", "iv", "gex", "skew", "surface"])
def test_spot_100x_too_large_warns_in_every_command_that_uses_it(tmp_path: Path, command: str):
    args = ["--no-robustness"] if command == "gex" else []
    res = run_cli(command, _with_spot(tmp_path, "64505"), *args, "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert "warning:" in res.stderr and "parity" in res.stderr


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_infinite_strike_is_an_error(tmp_path: Path, value: str):
    line = one_error_line(run_cli("inspect", _with_field(tmp_path, 3, 11, value)))
    assert "Strike" in line or "strike" in line


@pytest.mark.parametrize("n_fields", [15, 21, 23, 30])
def test_rows_with_the_wrong_number_of_fields_are_rejected_by_the_fast_parser(tmp_path: Path, n_fields: int):
    lines = list(LINES)
    parts = lines[FIRST_ROW + 7].split(",")
    parts = parts[:n_fields] if n_fields < 22 else parts + ["1"] * (n_fields - 22)
    lines[FIRST_ROW + 7] = ",".join(parts)
    line = one_error_line(run_cli("inspect", _write(tmp_path, lines)))
    assert f"line {FIRST_ROW + 8}" in line and f"row has {n_fields} fields" in line


def test_trailing_empty_fields_are_still_accepted(tmp_path: Path):
    lines = [ln + ",," if i >= FIRST_ROW and ln.strip() else ln for i, ln in enumerate(LINES)]
    assert run_cli("inspect", _write(tmp_path, lines)).exit_code == 0


def test_negative_and_huge_volume_is_counted(tmp_path: Path):
    path = _with_field(tmp_path, 4, 6, "-10")
    lines = path.read_text().split("\n")
    parts = lines[FIRST_ROW + 8].split(",")
    parts[17] = "1e12"
    lines[FIRST_ROW + 8] = ",".join(parts)
    res = run_cli("inspect", _write(tmp_path, lines, "v.csv"), "--format", "json")
    assert json.loads(res.stdout)["flagged"]["bad_volume"] == 2


# ------------------------------------------------------------------------------------ unsafe writes


def _canonical_with_underlying(tmp_path: Path, underlying: str) -> Path:
    canon = tmp_path / "canon.csv"
    assert run_cli("normalize", SPY, "-o", canon).exit_code == 0
    lines = canon.read_text().split("\n")
    i = next(i for i, ln in enumerate(lines) if ln.startswith("# underlying:"))
    lines[i] = f"# underlying: {underlying}"
    canon.write_text("\n".join(lines))
    return canon


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("underlying", ["../../x", "ABSOLUTE/x", "a\x1b[31m/..\\..//b"])
@pytest.mark.parametrize("command", ["gex", "skew"])
def test_plot_names_from_data_stay_inside_the_folder(tmp_path: Path, underlying: str, command: str):
    escape = tmp_path / "escape"
    canon = _canonical_with_underlying(tmp_path, underlying.replace("ABSOLUTE", str(escape)))
    work = tmp_path / "work"
    plots = work / "a" / "b" / "plots"
    before = _files_under(tmp_path)
    args = ["--no-robustness"] if command == "gex" else []
    res = run_cli(command, canon, *args, "--format", "json", "--plot", plots)
    assert res.exit_code == 0, res.stderr
    new = _files_under(tmp_path) - before
    assert new and all(plots in p.parents for p in new), new
    assert not escape.exists()
    assert "\x1b" not in res.stderr


def test_track_plot_name_from_data_stays_inside(tmp_path: Path):
    canon = _canonical_with_underlying(tmp_path, "../../../x")
    plots = tmp_path / "p" / "q"
    before = _files_under(tmp_path)
    res = run_cli("track", canon, "--plot", plots, "--no-progress")
    assert res.exit_code == 0, res.stderr
    new = _files_under(tmp_path) - before
    assert new and all(plots in p.parents for p in new), new


def test_inspect_table_strips_control_characters(tmp_path: Path):
    lines = list(LINES)
    lines[1] = lines[1].replace("SPDR S&P 500 ETF Trust", "SPDR\x1b[2J\x1b]0;pwned\x07\x08 Trust")
    res = run_cli("inspect", _write(tmp_path, lines))
    assert res.exit_code == 0, res.stderr
    assert not {"\x1b", "\x07", "\x08"} & set(res.stdout)
    assert "SPDR" in res.stdout and "Trust" in res.stdout


def test_o_file_is_written_atomically(tmp_path: Path, monkeypatch):
    """A failure while writing -o leaves the previous file whole and no temporary file behind."""
    out = tmp_path / "f.json"
    out.write_text("previous\n")
    import volsurf._paths as paths

    real_replace = os.replace

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(paths.os, "replace", boom)
    res = run_cli("inspect", SPY, "--format", "json", "-o", out)
    monkeypatch.setattr(paths.os, "replace", real_replace)
    assert res.exit_code == 130 and res.stderr.strip() == "Interrupted."
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


# ----------------------------------------------------------------------------------------- interrupts


def test_ctrl_c_inside_an_import_is_an_interrupt(monkeypatch: pytest.MonkeyPatch):
    """A Ctrl-C while a C extension initialises surfaces as ``ImportError: initialization failed`` caused by the
    KeyboardInterrupt (seen with matplotlib's ft2font): one ``Interrupted.`` line and 130, no traceback; any other
    error still propagates."""
    import volsurf.io

    def interrupted_import(*_a: object, **_k: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(volsurf.io, "load", interrupted_import)
    res = run_cli("inspect", SPY)
    assert res.exit_code == 130 and res.stderr.strip() == "Interrupted.", res.stderr

    def plain_bug(*_a: object, **_k: object) -> None:
        raise ImportError("a real import problem")

    monkeypatch.setattr(volsurf.io, "load", plain_bug)
    with pytest.raises(ImportError, match="a real import problem"):
        run_cli("inspect", SPY)


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _interrupt(args: list[str], after: float) -> tuple[int, str, float]:
    proc = _start(args)
    time.sleep(after)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err, time.monotonic() - t0


@pytest.mark.parametrize(("command", "extra"), [
    ("gex", ["--points", "4001"]),
    ("skew", []),
    ("surface", []),
])
def test_ctrl_c_exits_130_with_one_line(tmp_path: Path, command: str, extra: list[str]):
    plots = tmp_path / "plots"
    code, err, took = _interrupt([command, SAMPLES / "spx_2026-07-31_close.csv", *extra, "--plot", plots,
                                  "-o", tmp_path / "out.txt"], after=2.0)
    if code == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert code == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("warning: ", "wrote "))]
    assert lines == ["Interrupted."], err
    assert took < 1.5, took
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and (p.name.startswith(".") or p.stat().st_size == 0)]
    assert not leftovers, leftovers


def test_ctrl_c_stops_track_workers():
    require_shared()
    # every real chain on the fitted surface: tens of seconds of work for two workers (the run fails at its end
    # on mixed underlyings, long after the interrupt)
    code, err, took = _interrupt(["track", REAL, "--jobs", "2", "--no-progress", "--surface", "fitted"], after=2.0)
    if code == 0 or "several underlyings" in err:
        pytest.skip("the run finished before the interrupt arrived")
    assert code == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning: ")]
    assert lines == ["Interrupted."], err
    assert took < 1.5, took
