"""The README's examples stay true: the two set-up commands head it, and its workloads file is valid."""

from __future__ import annotations

import re
from pathlib import Path

from forecaster.service.registry import load_workloads

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_exactly_the_two_setup_commands() -> None:
    text = README.read_text()
    first = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first is not None
    assert first.group(1).strip().splitlines() == [
        "pip install -e . && forecaster demo",
        "pip install -e '.[test]' && python -m pytest",
    ]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && python -m pytest" in ci


def test_readme_workloads_file_example_loads(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n(workloads:.*?)```", README.read_text(), re.S)
    assert block is not None
    path = tmp_path / "workloads.yaml"
    path.write_text(block.group(1))
    registry = load_workloads(path)
    (spec,) = list(registry)
    assert spec.id == "shop/web" and spec.capacity_per_pod == 500 and [c.name for c in spec.containers] == ["app"]
