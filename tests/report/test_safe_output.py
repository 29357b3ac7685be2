"""The report folder holds one whole report or the previous one: interrupted, failed and concurrent runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, run_cli

SPY = SAMPLES / "spy_2025-06-09_close.csv"
SPY_AUG = SAMPLES / "spy_2025-08-29_close.csv"


def _consistent(out: Path) -> dict:
    """The page, the summary and the charts on disk belong to one run; no staging folder is left."""
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    page = (out / "report.html").read_text(encoding="utf-8")
    assert summary["snapshot"]["source_file"] in page
    assert summary["headline"]["trade_date"] in page
    for name in summary["charts"].values():
        assert (out / name).is_file(), name
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == set(summary["charts"].values())
    assert not [p for p in out.iterdir() if p.name.startswith(".volsurf-staging-")]
    return summary


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_failed_run_leaves_the_previous_report_intact(tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    assert run_cli("report", SPY, "-o", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}

    import volsurf.report.html as html_mod

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(html_mod, "render_html", boom)
    with pytest.raises(RuntimeError):
        run_cli("report", SPY_AUG, "-o", out)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert after == before
    assert _consistent(out)["headline"]["trade_date"] == "2025-06-09"


def test_ctrl_c_exits_130_with_one_line_and_no_partial_files(tmp_path: Path):
    out = tmp_path / "out"
    assert run_cli("report", SPY, "-o", out).exit_code == 0
    proc = _start(["report", str(SPY_AUG), "-o", str(out)])
    time.sleep(2.5)  # well inside the run (imports, load, fit, charts)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 3.0
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("\r")]
    assert lines[-1] == "Interrupted." and "Traceback" not in err, err
    assert _consistent(out)["headline"]["trade_date"] == "2025-06-09"


def test_concurrent_runs_each_leave_a_whole_report(tmp_path: Path):
    out = tmp_path / "out"
    a = _start(["report", str(SPY), "-o", str(out)])
    b = _start(["report", str(SPY_AUG), "-o", str(out)])
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    summary = _consistent(out)
    assert summary["headline"]["trade_date"] in ("2025-06-09", "2025-08-29")


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_bad_output_folder_is_one_line_exit_2(tmp_path: Path, kind: str):
    if kind == "file":
        target = tmp_path / "taken"
        target.write_text("x")
        out = target / "sub"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write into read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        out = ro / "out"
    res = run_cli("report", SPY, "-o", out)
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("Error: "), res.stderr
    assert not re.search("Traceback", res.stderr)


def test_ctrl_c_after_the_command_finished_is_ignored(tmp_path: Path):
    """A Ctrl-C that lands after the command has finished (while the interpreter tears down, up to 0.2 s after a
    report) does not kill the process by the signal (status -2, no message): it exits 0, its output whole."""
    code = ("import atexit, os, signal, sys, time\n"
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.3)))\n"
            "sys.argv = ['volsurf', 'inspect', sys.argv[1]]\n"
            "from volsurf.cli.main import main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code, str(SPY)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "KeyboardInterrupt" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "SPY" in proc.stdout
