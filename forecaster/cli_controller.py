"""``forecaster controller`` commands, registered on ``forecaster.cli.app``
(imported at the end of ``forecaster.cli``)."""

from __future__ import annotations

from forecaster.cli import app  # noqa: F401  commands below register on it
