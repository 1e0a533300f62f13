"""Read-only views of an experiment: its best trial, a status summary, and flat exports.

A person reads a choice as its option (`SearchSpace.display`), never as the stored index; exports
keep the index in a column of its own (`param.model` = "svm", `param.model_index` = 0).
"""
from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import math
import shlex
from typing import Any

import numpy as np

from hyperdist.algorithms.history import FAILED, OK, HistoryTable
from hyperdist.views.importance import importances
from hyperdist.views.summary import rate_per_minute
from hyperdist.objective.result import STATUS_PRUNED, ok_loss
from hyperdist.space.compiled import SearchSpace, space_from_json
from hyperdist.errors import redact
from hyperdist.store import ExperimentState, Refusal, Store, TrialRecord, TrialState, trial_error_text
from hyperdist.store.document import fields, planned, trials_text, utc
from hyperdist.store.experiments import holder_gone


def _loss(rec: TrialRecord) -> float | None:
    return ok_loss(rec.result, rec.state == TrialState.DONE)


def loss_table(space: SearchSpace, records: list[TrialRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Parameters as a numeric table (NaN = inactive) and losses (NaN unless finished ok)."""
    table = HistoryTable(space)
    for r in records:
        loss = _loss(r)
        table.add(r.id if r.id is not None else r.tid, r.params, OK if loss is not None else FAILED, loss)
    obs = table.observations()
    return obs.X, obs.loss


def best_trial(store: Store, exp_key: str, history: list[TrialRecord] | None = None) -> TrialRecord | None:
    """The finished trial with the lowest ok loss (the first of equal ones), or None."""
    records = history if history is not None else store.records(exp_key)
    scored = [(loss, r) for r in records if (loss := _loss(r)) is not None]
    return min(scored, key=lambda pair: pair[0])[1] if scored else None


def best_json(best: TrialRecord, space: SearchSpace) -> str:
    """The best trial as `hyperdist best` and the end of a search print it: tid, loss, the params as
    a person reads them (a choice as its option), the configuration they evaluate to, and the params
    as stored (a choice as its index: what `space_eval` and Hyperopt's `fmin` return)."""
    return json.dumps({"tid": best.tid, "loss": best.result["loss"], "params": space.readable(best.params),
                       "config": space.eval(best.params), "stored_params": best.params}, indent=2, default=str)


def effective_state(exp: dict, now: dt.datetime | None = None) -> tuple[str, str]:
    """The state a person should read, and a note: an experiment marked running whose coordinator
    lease has lapsed has no coordinator any more (it crashed, or its machine went away), so it is
    shown as stopped ("coordinator gone since ...") rather than as a search that is progressing."""
    state = str(exp.get("state", "?"))
    if state != ExperimentState.RUNNING:
        return state, ""
    coordinator = fields(exp.get("coordinator"))
    until = coordinator.get("lease_until")
    now = now or dt.datetime.now(dt.timezone.utc)
    if isinstance(until, dt.datetime) and utc(until) < now:
        return ExperimentState.STOPPED.value, f"coordinator gone since {utc(until):%Y-%m-%d %H:%M:%S} UTC ({_age(until)})"
    if holder_gone(coordinator.get("owner")):  # killed on this machine: known before its lease runs out
        return ExperimentState.STOPPED.value, "its coordinator's process on this machine is gone"
    return state, ""


def error_line(rec: TrialRecord) -> str:
    """A failed trial's error on one line (store.error_text's words, first line only)."""
    text = trial_error_text(rec.error, rec.result)
    return (str(text).strip().splitlines() or [""])[0]


def render_status(store: Store, exp_key: str | None) -> tuple[str, bool]:
    """Text for `hyperdist status`, and whether the experiment is no longer running."""
    if exp_key is None:
        exps = store.list_experiments()
        if len(exps) == 1:  # the usual case on one machine: show it, not a list of one
            return render_status(store, exps[0]["_id"])
        lines = [f"{e['_id']}: {' '.join(filter(None, effective_state(e)))}" for e in exps] or ["no experiments"]
        if exps:
            lines.append("(`hyperdist status EXP` shows one of them in full)")
        return "\n".join(lines), True
    exp = store.get_experiment(exp_key)
    state, note = effective_state(exp)
    docs = store.records(exp_key)
    counts = dict.fromkeys(TrialState, 0)
    for d in docs:
        counts[d.state] += 1
    finished = counts[TrialState.DONE] + counts[TrialState.ERROR]
    pruned = sum(1 for d in docs if d.status == STATUS_PRUNED)
    max_evals = planned(exp.get("max_evals"))
    lines = [
        f"experiment {exp_key}  state={state}{f' ({note})' if note else ''}  objective={exp.get('objective')}",
        f"trials: {finished}/{'?' if max_evals is None else max_evals} finished  " + "  ".join(f"{k}={v}" for k, v in counts.items())
        + (f"  (pruned={pruned})" if pruned else ""),
    ]
    for n, top in store.top_errors(exp_key, 1) if counts[TrialState.ERROR] else []:
        lines.append(f"errors: {counts[TrialState.ERROR]}; most frequent: {n}x {(top.strip().splitlines() or [''])[0]}  "
                     f"[hyperdist trials {shlex.quote(exp_key)} --state error; hyperdist show {shlex.quote(exp_key)} TID]")
    rate = rate_per_minute((d.finished for d in docs), recent=state == ExperimentState.RUNNING)
    if rate:
        eta = (max_evals - finished) / rate if max_evals is not None and max_evals > finished else 0.0
        lines.append(f"rate: {rate:.1f} trials/min" + (f"  ETA: {_minutes(eta)}" if state == ExperimentState.RUNNING
                                                        and max_evals is not None else ""))
    space = space_from_json(exp.get("space"))
    best = best_trial(store, exp_key, docs)
    if best is not None:
        lines.append(f"best: loss={best.result['loss']:.6g} (trial {best.tid}) "
                     f"params={json.dumps(space.readable(best.params), default=str)}")
    X, loss = loss_table(space, docs)
    if np.isfinite(loss).sum() >= 10:
        ranked = sorted(importances(space, X, loss).items(), key=lambda kv: -kv[1])[:5]
        lines.append("importance: " + "  ".join(f"{k}={v:.2f}" for k, v in ranked))
    devices = collections.Counter(d.device for d in docs if d.device and d.finished_state)
    if devices:
        lines.append("trials per device: " + "  ".join(f"{k}={v}" for k, v in sorted(devices.items())))
    coordinator = fields(exp.get("coordinator"))
    if coordinator:
        until = coordinator.get("lease_until")
        lease = ("its lease runs out " if isinstance(until, dt.datetime) and utc(until) >= dt.datetime.now(dt.timezone.utc)
                 else "its lease ran out ") + _age(until)
        lines.append(f"coordinator: {coordinator.get('owner')} ({lease})")
    lines += _running_lines(docs)
    refusals = Refusal.read(exp.get("refusals"))
    if refusals:
        lines.append(f"workers that refused to run it (last {len(refusals)}):")
        lines += [f"  {r.worker} {_age(r.at)}: {redact(r.reason)}" for r in refusals]
    return "\n".join(lines), state != ExperimentState.RUNNING


def _running_lines(docs: list[TrialRecord]) -> list[str]:
    """One line per worker and device: the trials it holds (a worker claims short trials in
    batches), when it claimed the oldest, its latest heartbeat, and whether a lease expired."""
    now = dt.datetime.now(dt.timezone.utc)
    held: dict[tuple, list[TrialRecord]] = {}
    for d in docs:
        if d.state == TrialState.RUNNING:
            held.setdefault((d.owner, d.device), []).append(d)
    lines = []
    for (owner, device), trials in held.items():
        claimed = min((utc(d.claimed) for d in trials if isinstance(d.claimed, dt.datetime)), default=None)
        beats = [utc(t) for t in (d.heartbeat or d.claimed for d in trials) if isinstance(t, dt.datetime)]
        expired = any(d.lease_until is not None and d.lease_until < now for d in trials)
        on = f" on {device}" if device else ""
        lines.append(f"  worker {owner}{on}: {trials_text([d.tid for d in trials])} claimed {_age(claimed)}, "
                     f"last heartbeat {_age(max(beats, default=None))}{'  LEASE EXPIRED' if expired else ''}")
    return lines


def _minutes(m: float) -> str:
    """'12.5 min', or seconds under a minute (not '0.0 min' for a search about to end)."""
    return f"{m:.1f} min" if m >= 1 else f"{m * 60:.0f} s"


def _age(t: Any) -> str:
    if not isinstance(t, dt.datetime):
        return "?"
    seconds = (dt.datetime.now(dt.timezone.utc) - utc(t)).total_seconds()
    return f"{seconds:.0f}s ago" if seconds >= 0 else f"in {-seconds:.0f}s"


def export_trials(docs: list[TrialRecord], space: SearchSpace, fmt: str) -> str:
    """CSV (one column per parameter and per scalar result key), JSON, or JSON lines. JSON has no
    NaN or Infinity, so a non-finite number is written as null there (CSV keeps `nan`/`inf`)."""
    rows = [_flat(d, space) for d in docs]
    if fmt == "json":
        return json.dumps([_json_safe(r) for r in rows], indent=1, default=str, allow_nan=False) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(_json_safe(r), default=str, allow_nan=False) + "\n" for r in rows)
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(k for k, v in r.items() if not isinstance(v, (dict, list))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _flat(rec: TrialRecord, space: SearchSpace) -> dict[str, Any]:
    row: dict[str, Any] = {"tid": rec.tid, "state": rec.state.value}
    result = rec.result
    row["loss"] = result.get("loss")
    row["status"] = result.get("status")
    for step, value in sorted(rec.intermediate.items(), key=lambda kv: int(kv[0])):
        row[f"step.{step}"] = value
    for k, v in rec.params.items():
        row[f"param.{k}"] = space.display(k, v)
        if space.is_choice(k):
            row[f"param.{k}_index"] = v
    for k, v in result.items():
        if k not in ("loss", "status"):
            row[f"result.{k}"] = v
    row["error"] = error_line(rec) if rec.state == TrialState.ERROR else None
    for k in ("attempts", "owner", "device", "claimed", "finished"):
        row[k] = getattr(rec, k)
    return row
