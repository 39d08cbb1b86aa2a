"""Helpers of the notebook tests: where the notebooks are, what a committed notebook must look like, and how to
execute one on bundled data (nbclient, the ``python3`` kernel of this interpreter, ``MPLBACKEND=Agg``,
``FORECASTER_NB_FAST=1``), always from a clean state (outputs and counts cleared first).

Notebooks are committed *with* the outputs of one clean top-to-bottom run in the default (not fast) mode, so the
charts show on the repository page: ``python tests/notebooks/render.py`` makes them and records the digest of the
code it ran (``source_digest``) in the notebook's metadata, so an edited cell that was not re-run is noticed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("capacity_planning", "rightsizing", "autoscaling_whatif")
KERNEL = "python3"
TIMEOUT_S = 600
"""Per-cell limit: a hung kernel fails the test instead of blocking the suite (not a timing assertion)."""


def path_of(name: str) -> Path:
    return NOTEBOOKS / f"{name}.ipynb"


def load(name: str) -> NotebookNode:
    return nbformat.read(path_of(name), as_version=4)


DIGEST_KEY = "forecaster"
"""Notebook metadata key holding ``{"source_sha256": ...}`` of the code the committed outputs came from."""


def source_digest(nb: NotebookNode) -> str:
    """SHA-256 of the code cells' sources, in order: what the committed outputs must have been made from."""
    code = "\n\x00".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def clear(nb: NotebookNode) -> NotebookNode:
    """``nb`` with every code cell's outputs and execution count removed (the clean state a run starts from)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def committed_problems(nb: NotebookNode) -> list[str]:
    """Why a notebook may not be committed as is: not the outputs of one clean top-to-bottom run of its code (counts
    1, 2, 3, ... in order; no error; the code digest recorded by ``render.py``), no chart, a wrong kernel, no
    prose."""
    problems = []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for n, (i, cell) in enumerate(code, start=1):
        if cell.get("execution_count") != n:
            problems.append(f"cell {i} has execution_count {cell.get('execution_count')}, not {n}: run all cells "
                            "from a clean kernel (python tests/notebooks/render.py)")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} failed: {out.get('ename')}: {out.get('evalue')}")
    if not any("image/png" in o.get("data", {}) for _, c in code for o in c.get("outputs", [])):
        problems.append("no chart in the outputs")
    recorded = nb.metadata.get(DIGEST_KEY, {}).get("source_sha256")
    if recorded != source_digest(nb):
        problems.append("outputs are not from the current code (re-run: python tests/notebooks/render.py)")
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != KERNEL:
        problems.append(f"kernelspec is {kernel!r}, not {KERNEL!r}")
    if not any(cell.cell_type == "markdown" for cell in nb.cells):
        problems.append("no markdown cell: a notebook must explain what to conclude")
    return problems


def ensure_kernel() -> None:
    """Make sure a ``python3`` kernel spec exists (ipykernel provides it natively; install it if not)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", KERNEL], check=True)


def execute(name: str) -> NotebookNode:
    """Run ``name`` top to bottom in a fresh kernel whose working folder is ``notebooks/``; raises on any cell error.

    The kernel inherits this process's environment, so the caller sets ``MPLBACKEND`` and ``FORECASTER_NB_FAST``
    (``monkeypatch.setenv``) before calling.
    """
    from nbclient import NotebookClient

    ensure_kernel()
    nb = clear(load(name))
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=TIMEOUT_S, resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def outputs(nb: NotebookNode, output_type: str | None = None) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if output_type is None or o.get("output_type") == output_type]  # fmt: skip


def images(nb: NotebookNode) -> int:
    """Number of rendered PNG figures in an executed notebook."""
    return sum(1 for o in outputs(nb) if "image/png" in o.get("data", {}))


def text(nb: NotebookNode) -> str:
    """Everything printed (stdout and stderr) and every plain-text result of an executed notebook."""
    parts = [o.get("text", "") for o in outputs(nb, "stream")]
    parts += [o.get("data", {}).get("text/plain", "") for o in outputs(nb) if "data" in o]
    return "\n".join(parts)


def stderr(nb: NotebookNode) -> str:
    return "\n".join(o.get("text", "") for o in outputs(nb, "stream") if o.get("name") == "stderr")


def fast_env() -> dict[str, str]:
    """Environment for executed notebooks: headless matplotlib, the smaller fits, one BLAS thread."""
    return {"MPLBACKEND": "Agg", "FORECASTER_NB_FAST": "1", "OPENBLAS_NUM_THREADS": os.environ.get(
        "OPENBLAS_NUM_THREADS", "1"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # fmt: skip


def execute_fast(name: str) -> Iterator[NotebookNode]:
    """Body of each notebook test module's ``executed`` fixture: ``name`` executed under ``fast_env()``."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in fast_env().items():
            mp.setenv(key, value)
        yield execute(name)
