"""Every command: `--help` works through the real entry point, shows an example, and has a row in the README's
command table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cli

from volsurf.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_top_level_help_lists_every_command():
    res = run_cli("--help")
    assert res.exit_code == 0, res.stderr
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", res.stdout, flags=re.M), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_has_an_example(name: str):
    res = run_cli(name, "--help")
    assert res.exit_code == 0, res.stderr
    assert "Example" in res.stdout, f"`volsurf {name} --help` shows no example"
    examples = res.stdout.split("Example", 1)[1]
    assert f"volsurf {name}" in examples, f"the example of `volsurf {name}` does not run `volsurf {name}`"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_a_readme_row(name: str):
    assert re.search(rf"^\| `volsurf {re.escape(name)}[ `]", README, flags=re.M), (
        f"README's command table has no row for `volsurf {name}`"
    )
