"""One line describing where and on what code a benchmark ran, appended to every report.

hyperdist's code changes while others work on it; to benchmark one commit, put a copy of it first on
PYTHONPATH (its directory name then appears in the report):

    git archive --prefix=hd-$(git rev-parse --short HEAD)/ HEAD hyperdist | tar -x -C /tmp
    PYTHONPATH=/tmp/hd-$(git rev-parse --short HEAD) python benchmarks/quality.py ...
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def describe() -> str:
    versions = []
    for pkg in ("hyperdist", "hyperopt", "optuna", "numpy", "scipy"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    import hyperdist

    where = Path(hyperdist.__file__).resolve().parent.parent
    if where == ROOT and not (ROOT / ".git").exists() and not _git("rev-parse", "--git-dir"):
        code = f"hyperdist and benchmarks from the copy {where}"  # a `git archive` of one commit
    elif where == ROOT:
        commit = _git("log", "-1", "--format=%h") or "?"
        dirty = _git("status", "--short", "--", "hyperdist")
        code = f"hyperdist from the work tree at {commit}" + (" with uncommitted changes" if dirty else "")
    else:
        code = f"hyperdist imported from {where}"
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Run {now}; {os.cpu_count()} cores; Python {platform.python_version()}; "
            + ", ".join(versions) + f"; {code}.")
