"""What a process pays to start: scipy (~0.25 s of CPU to import) waits for TPE's first model (issue 21).

Each check runs a fresh interpreter (a real OS process), since a test process has imported
everything already.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from scipy.special import ndtr as scipy_ndtr, ndtri as scipy_ndtri

from hyperdist.algorithms import special


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


def test_a_worker_process_does_not_import_scipy():
    loaded = _fresh("import sys; import hyperdist, hyperdist.distributed.worker, hyperdist.store, hyperdist.cli; "
                    "print(sorted(m for m in sys.modules if m.startswith('scipy')))")
    assert loaded == "[]"


def test_tpe_loads_scipy_only_when_it_fits_a_model():
    out = _fresh(
        "import sys; from hyperdist import hp, tpe, compile_space; from hyperdist.local.trials import Trials\n"
        "space = compile_space({'x': hp.uniform('x', -1, 1)}); trials = Trials()\n"
        "tpe.suggest([0], space, trials, 0); print('scipy' in sys.modules)\n")
    assert out == "False"  # the random start-up trials need no model


def test_the_deferred_normal_cdf_is_scipys():
    x = np.linspace(-9, 9, 41)
    assert np.array_equal(special.ndtr(x), scipy_ndtr(x))
    out = np.empty_like(x)
    assert special.ndtr(x, out=out) is out and np.array_equal(out, scipy_ndtr(x))
    p = np.linspace(0.01, 0.99, 17)
    assert np.array_equal(special.ndtri(p), scipy_ndtri(p))
