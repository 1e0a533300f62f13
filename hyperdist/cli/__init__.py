"""The `hyperdist` command line: one module per group of commands, all on one click group."""
from __future__ import annotations

from hyperdist.cli import dashboard, experiments, search, server, stop, tracking, trials, worker  # noqa: F401  (each registers its commands)
from hyperdist.cli.app import main, run

__all__ = ["main", "run"]
