"""MLflow tracking: a parent run per experiment, a child run per finished trial.

A child run carries the trial's parameters (choices as their options), its loss, status, duration,
worker and device, the values it reported along the way as the metric history `intermediate`,
and for a failed trial the error (tags, and the traceback as an artifact). It starts and ends when
the trial did. MLflow's own conventions decide where runs go: MLFLOW_TRACKING_URI (or
`tracking_uri=`), and the experiment named by MLFLOW_EXPERIMENT_NAME / MLFLOW_EXPERIMENT_ID (or
`experiment_name=`), else the hyperdist experiment's key, else MLflow's default experiment. Trials
are found again by the tags `hyperdist.exp_key` and `hyperdist.tid`, so resuming never logs a trial
twice. Calls happen on hyperdist.integrations.tracking.Mirror's thread, which makes an unreachable server a
warning rather than a stalled search.
"""
from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from hyperdist.integrations import require
from hyperdist.errors import HyperdistError, redact
from hyperdist.integrations.tracking import LoggedTrial
from hyperdist.store.document import ExperimentState

_STATUS = {"ok": "FINISHED", "pruned": "KILLED"}  # anything else: FAILED
_TAG_MAX = 5000  # below MLflow's limit on a tag value (8000 characters in MLflow 3)


def _ms(t: Any) -> int | None:
    return int(t.timestamp() * 1000) if t is not None else None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class MlflowLog:
    """`fmin(..., log=MlflowLog(...))`, or `log="mlflow"` for the defaults (hyperdist.integrations.tracking.TrialLog)."""

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None,
                 run_name: str | None = None) -> None:
        self.mlflow = require("mlflow", "mlflow")
        self.tracking_uri, self.experiment_name, self.run_name = tracking_uri, experiment_name, run_name
        try:  # a URI MLflow cannot use fails here, before the search; an unreachable server only later
            self.client: Any = self.mlflow.MlflowClient(tracking_uri)
        except Exception as exc:
            if tracking_uri is None and not os.environ.get("MLFLOW_TRACKING_URI"):
                raise HyperdistError(
                    f"MLflow has nowhere to log: set MLFLOW_TRACKING_URI (a server, e.g. http://mlflow.example:5000, "
                    f"or a file store, file:///path/mlruns, with MLFLOW_ALLOW_FILE_STORE=true); MLflow's default "
                    f"{self.where!r} needs the full package (pip install mlflow)") from None
            reason = redact(str(exc).strip().splitlines()[0])
            raise HyperdistError(f"MLflow cannot use the tracking URI {redact(self.where)!r}: "
                                 f"{reason[:300]}{'...' if len(reason) > 300 else ''}") from None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self._best: float | None = None
        self._count = 0
        self._partial: dict[int, str] = {}  # tid -> child run created but not finished (a retry reuses it)
        self._unsure = True  # no call answered yet, or the last one failed: knock before calling MLflow

    def _knock(self) -> None:
        """Fail at once, naming the reason, when an HTTP tracking server cannot be connected to: MLflow
        itself retries a refused connection for minutes, which would hide the reason that long."""
        if not self._unsure:
            return
        parts = urlsplit(self.where)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return
        if getproxies().get(parts.scheme) and not proxy_bypass(parts.hostname):
            return  # reached through a proxy: only MLflow's own request can tell
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            socket.create_connection((parts.hostname, port), timeout=5).close()
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise ConnectionError(f"MLflow at {redact(self.where)} cannot be reached: {reason}") from None

    @property
    def where(self) -> str:
        """The tracking URI runs go to (as MLflow resolves it)."""
        return self.tracking_uri or self.mlflow.get_tracking_uri()

    def open(self, exp_key: str | None, info: dict[str, Any]) -> set[int]:
        self._knock()
        self._unsure = True
        self.experiment_id = self._experiment(exp_key)
        tags = {"hyperdist.role": "experiment"}
        if exp_key is not None:
            tags["hyperdist.exp_key"] = exp_key
            found = self.client.search_runs(
                [self.experiment_id], f"tags.`hyperdist.exp_key` = '{_quote(exp_key)}' "
                                      "and tags.`hyperdist.role` = 'experiment'", max_results=1,
                order_by=["attributes.start_time DESC"])
            if found:
                self.parent_id = found[0].info.run_id
                self.client.update_run(self.parent_id, status="RUNNING")
                tids = self._logged_tids()
                self._unsure = False
                return tids
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=self.run_name or exp_key or "hyperdist fmin")
        self.parent_id = run.info.run_id
        params = [self.mlflow.entities.Param(k, str(v)[:6000]) for k, v in info.items() if v is not None]
        if params:
            self.client.log_batch(self.parent_id, params=params)
        self._unsure = False
        return set()

    def _experiment(self, exp_key: str | None) -> str:
        if self.experiment_name is None and os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        name = self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or exp_key
        if name is None:
            return "0"  # MLflow's "Default" experiment
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else self.client.create_experiment(name)

    def _logged_tids(self) -> set[int]:
        tids: set[int] = set()
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.parent_id}'",
                                           max_results=1000, page_token=token)
            for run in page:
                if "hyperdist.tid" not in run.data.tags:
                    continue
                tid = int(run.data.tags["hyperdist.tid"])
                if run.info.status == "RUNNING":  # an earlier process died half-way: finish that run
                    self._partial[tid] = run.info.run_id
                    continue
                tids.add(tid)
                self._count += 1
                loss = run.data.metrics.get("loss")
                if run.data.tags.get("hyperdist.status") == "ok" and loss is not None:
                    self._best = loss if self._best is None else min(self._best, loss)
            token = page.token
            if not token:
                return tids

    def log(self, record: LoggedTrial) -> None:
        self._knock()
        self._unsure = True
        self._log(record)
        self._unsure = False

    def _log(self, record: LoggedTrial) -> None:
        entities = self.mlflow.entities
        run_id = self._partial.get(record.tid)
        if run_id is None:
            tags = {"mlflow.parentRunId": self.parent_id, "hyperdist.tid": str(record.tid),
                    "hyperdist.status": record.status, "worker": record.worker or "?"}
            if record.device:
                tags["device"] = record.device
            if record.error:
                tags["error"] = f"{record.error.get('type')}: {record.error.get('message')}"[:_TAG_MAX]
            run_id = self.client.create_run(self.experiment_id, start_time=_ms(record.started), tags=tags,
                                            run_name=f"trial {record.tid}").info.run_id
            self._partial[record.tid] = run_id
        end = _ms(record.finished)
        metrics = [entities.Metric("intermediate", value, end or 0, step) for step, value in
                   sorted(record.intermediate.items())]
        if record.loss is not None:
            metrics.append(entities.Metric("loss", record.loss, end or 0, 0))
        if record.seconds is not None:
            metrics.append(entities.Metric("duration_seconds", record.seconds, end or 0, 0))
        params = [entities.Param(k, str(v)[:6000]) for k, v in record.params.items()]
        self.client.log_batch(run_id, metrics=metrics, params=params)
        if record.error and record.error.get("traceback"):
            self.client.log_text(run_id, record.error["traceback"], "traceback.txt")
        self.client.set_terminated(run_id, _STATUS.get(record.status, "FAILED"), end_time=end)
        del self._partial[record.tid]
        self._count += 1
        loss = record.ok_loss
        if loss is not None and (self._best is None or loss < self._best):
            self._best = loss
            self.client.log_metric(self.parent_id, "best_loss", loss, step=self._count)

    def close(self, state: str) -> None:
        if state in (ExperimentState.DONE, ExperimentState.STOPPED):
            self.client.set_terminated(self.parent_id, "FINISHED" if state == ExperimentState.DONE else "KILLED")
