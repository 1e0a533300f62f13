"""`hyperdist mlflow`: copy an experiment's finished trials to MLflow after the fact."""
from __future__ import annotations

import logging
import shlex
import sys
from typing import Any

import click

from hyperdist.cli.app import _with_store, echo, main


@main.command(name="mlflow")
@click.argument("exp_key")
@_with_store
def mlflow_(store: Any, exp_key: str) -> None:
    """Log an experiment's finished trials to MLflow (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME):
    a parent run and a child run per trial, only those not logged yet, e.g. after the tracking
    server was down during `search --log mlflow`."""
    from hyperdist.errors import redact
    from hyperdist.space.compiled import space_from_json
    from hyperdist.integrations.mlflow import MlflowLog
    from hyperdist.integrations.tracking import store_mirror
    from hyperdist.store import ExperimentState

    exp = store.get_experiment(exp_key)
    tlog = MlflowLog()
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # MLflow's retries: one line at the end
    info = {k: exp.get(k) for k in ("objective", "max_evals", "seed")}
    uri = redact(str(tlog.where))
    echo(f"logging the finished trials of {exp_key!r} to MLflow at {uri} (MLflow retries a server that answers "
         "with errors for a few minutes; Ctrl-C stops)", err=True)
    mirror = store_mirror(tlog, store, exp_key, space_from_json(exp.get("space")), info, flush_timeout=None,
                          quiet=True)
    state = exp.get("state")
    left = mirror.close(state if state in (ExperimentState.DONE, ExperimentState.STOPPED) else ExperimentState.RUNNING)
    if mirror.failure:
        echo(f"error: cannot log to MLflow ({mirror.failure}); logged {mirror.logged} trials of {exp_key!r}"
             + (f", {left} not yet" if left else "") + f"; run `hyperdist mlflow {shlex.quote(exp_key)}` again "
             "once it answers", err=True)
    else:
        echo(f"logged {mirror.logged} trials of {exp_key!r} to MLflow at {uri}")
    sys.exit(1 if left or mirror.failure else 0)
