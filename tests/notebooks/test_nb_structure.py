"""The committed notebooks, without running them: the outputs of one clean run of their current code (charts
included, no local paths), valid nbformat, parameters in
the first cell, code that compiles, charts only from ``forecaster.plots`` and each followed by prose, the
Prometheus source optional, and a README that lists every notebook (every notebook in the folder is tested)."""

from __future__ import annotations

import ast
import json
from types import CodeType

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nb_runner import DIGEST_KEY, NAMES, NOTEBOOKS, clear, committed_problems, load, source_digest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

CHART_CALLS = ("fan_chart", "members_chart", "replay_chart", "pareto_chart", "rightsizing_chart",
               "requested_vs_actual_chart")  # fmt: skip


def python_of(source: str) -> str:
    """A cell's source as plain Python (IPython magics such as ``%matplotlib inline`` turned into calls)."""
    return str(TransformerManager().transform_cell(source))


def code_cells(name: str) -> list[str]:
    return [c.source for c in load(name).cells if c.cell_type == "code"]


def test_every_notebook_in_the_folder_is_tested() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_with_the_outputs_of_a_clean_run(name: str) -> None:
    nb = load(name)
    nbformat.validate(nb)
    assert committed_problems(nb) == []


@pytest.mark.parametrize("name", NAMES)
def test_committed_outputs_hold_nothing_of_the_machine_that_made_them(name: str) -> None:
    text = json.dumps([c.get("outputs", []) for c in load(name).cells if c.cell_type == "code"])
    for local in ("/work/", "/root/", "/home/", "/tmp/", "site-packages"):
        assert local not in text, f"{name}: a local path ({local}) in the outputs"


def test_a_run_starts_from_a_clean_state() -> None:
    cell = new_code_cell("print(1)", execution_count=3, outputs=[new_output("stream", name="stdout", text="1\n")])
    cleared = clear(new_notebook(cells=[cell]))
    assert (cleared.cells[0].outputs, cleared.cells[0].execution_count) == ([], None)


def test_committed_problems_catches_stale_or_partial_runs_missing_charts_kernel_and_prose() -> None:
    cell = new_code_cell("print(1)", execution_count=3, outputs=[new_output("stream", name="stdout", text="1\n")])
    nb = new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "other", "display_name": "Other"}
    problems = committed_problems(nb)
    assert [p.split(":")[0] for p in problems] == [
        "cell 0 has execution_count 3, not 1", "no chart in the outputs",
        "outputs are not from the current code (re-run", "kernelspec is 'other', not 'python3'",
        "no markdown cell"]
    png = new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    good = new_notebook(cells=[new_markdown_cell("# t"), new_code_cell("x = 1", execution_count=1, outputs=[png])])
    good.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    good.metadata[DIGEST_KEY] = {"source_sha256": source_digest(good)}
    assert committed_problems(good) == []
    good.cells[1].source = "x = 2"
    assert committed_problems(good) == ["outputs are not from the current code (re-run: python "
                                        "tests/notebooks/render.py)"]


@pytest.mark.parametrize("name", NAMES)
def test_code_cells_compile(name: str) -> None:
    sources = code_cells(name)
    compiled = [compile(python_of(source), f"{name}.ipynb cell {i}", "exec") for i, source in enumerate(sources)]
    assert sources and all(isinstance(code, CodeType) for code in compiled)  # a SyntaxError names the cell


@pytest.mark.parametrize("name", NAMES)
def test_first_cell_holds_the_parameters(name: str) -> None:
    """Only imports and UPPER_CASE assignments, so a planner edits one cell; FAST comes from the test's env var."""
    first = load(name).cells[1] if load(name).cells[0].cell_type == "markdown" else load(name).cells[0]
    assert first.cell_type == "code" and first.source.lstrip().startswith("# Parameters")
    names = []
    for node in ast.parse(python_of(first.source)).body:
        assert isinstance(node, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign), ast.dump(node)[:80]
        if isinstance(node, ast.Assign):
            for target in node.targets:
                elts = target.elts if isinstance(target, ast.Tuple) else [target]
                names += [e.id for e in elts if isinstance(e, ast.Name)]
    assert names and all(n.isupper() for n in names), names
    if "FAST" in names:
        assert "FORECASTER_NB_FAST" in first.source


@pytest.mark.parametrize("name", NAMES)
def test_charts_come_from_forecaster_plots_and_are_explained(name: str) -> None:
    cells = load(name).cells
    charts = 0
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        assert "pyplot" not in cell.source and "plt." not in cell.source, f"cell {i}: use forecaster.plots"
        assert "import matplotlib" not in cell.source and ".add_subplot" not in cell.source, f"cell {i}"
        if any(f"plots.{call}(" in cell.source for call in CHART_CALLS):
            charts += 1
            following = cells[i + 1 : i + 3]
            assert any(c.cell_type == "markdown" for c in following), f"cell {i}: a chart without prose after it"
    assert charts >= 3


def test_prometheus_is_optional_in_the_capacity_notebook() -> None:
    sources = code_cells("capacity_planning")
    assert 'PROMETHEUS_URL = ""' in sources[0]
    guarded = []
    for source in sources:
        for node in ast.walk(ast.parse(python_of(source))):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "PROMETHEUS_URL":
                guarded += [n for n in ast.walk(node) if isinstance(n, ast.ImportFrom)]
    assert [n.module for n in guarded] == ["forecaster.adapters.prometheus"]
    assert sum("forecaster.adapters.prometheus" in s for s in sources) == 1  # imported nowhere else


def test_readme_lists_every_notebook() -> None:
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"{name}.ipynb" in readme
    assert "FORECASTER_NB_FAST" in readme
