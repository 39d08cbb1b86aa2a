"""Re-run every notebook from a clean kernel in its default (not fast) mode and commit-ready save it with its
outputs, so the charts show on the repository page:

    python tests/notebooks/render.py [name ...]      # all of nb_runner.NAMES by default; minutes

The run is ``nb_runner.execute`` (outputs cleared first, ``python3`` kernel, working folder ``notebooks/``,
``MPLBACKEND=Agg``, one BLAS thread); the digest of the code it ran goes to the notebook's metadata
(``nb_runner.source_digest``), so ``tests/notebooks/test_nb_structure.py`` notices a cell edited without re-running.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb_runner import DIGEST_KEY, NAMES, execute, path_of, source_digest


def render(name: str) -> None:
    started = time.monotonic()
    nb = execute(name)
    nb.metadata[DIGEST_KEY] = {"source_sha256": source_digest(nb)}
    nbformat.write(nb, path_of(name))
    print(f"{name}: {time.monotonic() - started:.0f} s")


def main(names: list[str]) -> int:
    os.environ.update({"MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    os.environ.pop("FORECASTER_NB_FAST", None)
    for name in names or list(NAMES):
        render(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
