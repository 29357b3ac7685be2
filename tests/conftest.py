"""Shared fixtures: paths to the real chains beside the checkout, and a cache of loaded snapshots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REAL = SHARED / "real_chains"
SAMPLES = ROOT / "sample_chains"
DATA = Path(__file__).resolve().parent / "data"

os.environ.setdefault("MPLBACKEND", "Agg")

# CI runs the property tests with a fixed seed (reproducible); locally they explore new examples each run.
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    _hyp_settings.load_profile("ci")


def real_chain_files() -> list[Path]:
    """Every real chain file under ../shared/real_chains (sorted)."""
    if not REAL.exists():
        return []
    return sorted(p for p in REAL.rglob("*.csv"))


def require_shared() -> None:
    if not REAL.exists():
        pytest.skip("needs ../shared/real_chains beside the checkout (the real data folder); not present")


@lru_cache(maxsize=64)
def load_cached(path: str):
    """Load a chain once per test session (snapshots are immutable by convention)."""
    from volsurf.io import load

    return load(path)


@lru_cache(maxsize=32)
def enrich_cached(path: str):
    """Load and enrich a chain once per test session."""
    from volsurf.pricing.enrich import enrich

    return enrich(load_cached(path))


def spx_spy_files(min_expiries: int = 1) -> list[Path]:
    """Real SPX/SPY Cboe files with at least ``min_expiries`` expiry dates."""
    out = []
    for p in real_chain_files():
        if "yfinance" in str(p):
            continue
        snap = load_cached(str(p))
        if snap.meta.underlying in ("SPX", "SPY") and snap.frame["expiry_date"].nunique() >= min_expiries:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------------------
# The one CLI harness: every CLI test runs the real entry point (volsurf.cli.main.main, with its error mapping
# and exit codes) in-process through click's CliRunner isolation (stdout and stderr captured separately).
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str | os.PathLike, input: str | None = None) -> CliResult:
    """Run ``volsurf ARGS...`` in-process; returns its exit code, stdout and stderr."""
    from click.testing import CliRunner

    from volsurf.cli.main import main

    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return CliResult(code, out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace"))
