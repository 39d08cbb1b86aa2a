"""The quality gate: ruff, mypy and the import-linter contracts pass on the whole repository, and every
module of ``forecaster/`` and ``signals/`` starts with a docstring and stays under the 600-line budget."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
MODULES = sorted(p for pkg in ("forecaster", "signals") for p in (ROOT / pkg).rglob("*.py"))


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def tool(name: str) -> str:
    """The console script next to this interpreter (the same environment), else on PATH."""
    local = Path(sys.executable).with_name(name)
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    "cmd",
    [("ruff", "check", "."), ("mypy",), ("lint-imports",)],
    ids=["ruff", "mypy", "import-linter"],
)
def test_tool_passes(cmd: tuple[str, ...]) -> None:
    result = run(tool(cmd[0]), *cmd[1:])
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"


def test_modules_were_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in MODULES}
    assert {"forecaster/forecasting/forecaster.py", "forecaster/forecasting/history.py", "signals/events.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_has_a_docstring_and_fits_the_budget(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    n_lines = len(source.splitlines())
    assert n_lines < MAX_LINES, f"{path.relative_to(ROOT)} has {n_lines} lines (budget {MAX_LINES})"
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert doc and doc.strip(), f"{path.relative_to(ROOT)} does not start with a module docstring"
    first = tree.body[0] if tree.body else None
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant), "the docstring must come first"
