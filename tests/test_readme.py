"""The README's examples stay true: the two set-up commands head it, and its workloads file is valid."""

from __future__ import annotations

import re
from pathlib import Path

from forecaster.runtime.service.registry import load_workloads

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_exactly_the_two_setup_commands() -> None:
    text = README.read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first is not None
    assert first.group(1).strip().splitlines() == [
        "pip install -c constraints.txt -e . && forecaster demo",
        "pip install -c constraints.txt -e '.[test]' && python -m pytest",
    ]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install -c constraints.txt -e '.[test]' && python -m pytest" in ci


def test_ci_installs_into_a_brand_new_virtual_environment() -> None:
    """A package left on the machine must never hide a broken resolution: .ci/run makes a new venv each run
    (removing any earlier one) and runs the README's test command with that venv's python and pip."""
    ci = (README.parent / ".ci" / "run").read_text()
    assert re.search(r'rm -rf "\$VENV"', ci) and re.search(r'python3 -m venv "\$VENV"', ci)
    assert ci.index('python3 -m venv "$VENV"') < ci.index("pip install -c constraints.txt")
    assert 'export PATH="$VENV/bin:$PATH"' in ci


def test_constraints_pin_every_dependency_and_keep_pytest_below_9_2() -> None:
    """The README commands resolve to a tested set: every line of constraints.txt is ``name==version`` and
    every dependency the project declares is pinned there."""
    import tomllib

    root = README.parent
    pins = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not name==version"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [d for ds in project["optional-dependencies"].values() for d in ds]
    for dep in declared:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0]).lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
    major, minor = (int(x) for x in pins["pytest"].split(".")[:2])
    assert (major, minor) < (9, 2)


def test_readme_workloads_file_example_loads(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n(workloads:.*?)```", README.read_text(), re.S)
    assert block is not None
    path = tmp_path / "workloads.yaml"
    path.write_text(block.group(1))
    registry = load_workloads(path)
    (spec,) = list(registry)
    assert spec.id == "shop/web" and spec.capacity_per_pod == 500 and [c.name for c in spec.containers] == ["app"]


def test_local_environments_are_ignored_by_git() -> None:
    """Tools that scan the tree (ruff, mypy, duplicates) must not read a local venv as source."""
    ignored = (README.parent / ".gitignore").read_text().splitlines()
    for entry in (".venv/", "venv/", ".tox/"):
        assert entry in ignored
