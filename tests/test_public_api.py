"""The public API: every name in ``volsurf.__all__`` resolves, is visible to type checkers, and the README's
notebook example uses nothing else."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import volsurf

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves():
    for name in volsurf.__all__:
        assert getattr(volsurf, name) is not None, name
    assert sorted(dir(volsurf)) == sorted(volsurf.__all__)


def test_type_checking_imports_match_the_lazy_map():
    tree = ast.parse((ROOT / "volsurf" / "__init__.py").read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    seen[alias.asname or alias.name] = str(imp.module)
    assert seen == volsurf._LAZY


def test_import_is_light():
    code = "import sys, volsurf; assert 'numpy' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_readme_notebook_example_uses_only_the_public_api():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has a Python example"
    for block in blocks:
        for line in block.splitlines():
            if line.startswith(("import ", "from ")) and "volsurf" in line:
                assert re.fullmatch(r"import volsurf|from volsurf import [\w, ]+", line.strip()), line
        used = set(re.findall(r"volsurf\.(\w+)", block))
        assert used <= set(volsurf.__all__), used - set(volsurf.__all__)


def test_readme_notebook_example_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    res = subprocess.run([sys.executable, "-c", block], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rr25, vix = (float(x) for x in res.stdout.split())
    assert -0.2 < rr25 < 0 and 5 < vix < 60


def test_all_lists_exactly_the_lazy_names():
    assert sorted(volsurf.__all__) == sorted(["__version__", *volsurf._LAZY])
