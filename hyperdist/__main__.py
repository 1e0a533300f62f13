"""`python -m hyperdist` runs the command line.

`-m` puts the working directory first on sys.path. The package itself is imported before this
runs, but what the commands import later (and a worker's objective's own imports) should not meet
a project's `csv.py` before the standard library's, so the entry is taken off here; the user's
modules are still found, after everything else (reference.py).
"""
import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from hyperdist.cli import run  # noqa: E402

run()
