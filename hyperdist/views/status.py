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
from typing import Any, Iterable

import numpy as np

from hyperdist.algorithms.history import FAILED, OK, HistoryTable
from hyperdist.views.importance import importances
from hyperdist.objective.result import STATUS_OK
from hyperdist.space.compiled import SearchSpace, space_from_json
from hyperdist.store import DONE, Store, error_text


def _loss(doc: dict) -> float | None:
    result = doc.get("result") or {}
    loss = result.get("loss")
    if doc.get("state") == DONE and result.get("status") == STATUS_OK and isinstance(loss, (int, float)) \
            and math.isfinite(loss):
        return float(loss)
    return None


def loss_table(space: SearchSpace, docs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Parameters as a numeric table (NaN = inactive) and losses (NaN unless finished ok)."""
    table = HistoryTable(space)
    for d in docs:
        loss = _loss(d)
        table.add(d["_id"], d.get("params") or {}, OK if loss is not None else FAILED, loss)
    obs = table.observations()
    return obs.X, obs.loss


def best_trial(store: Store | None, exp_key: str, history: list[dict] | None = None) -> dict | None:
    docs = history if history is not None else store.history(exp_key)  # type: ignore[union-attr]
    scored = [(loss, d) for d in docs if (loss := _loss(d)) is not None]
    return min(scored, key=lambda pair: pair[0])[1] if scored else None


def effective_state(exp: dict, now: dt.datetime | None = None) -> tuple[str, str]:
    """The state a person should read, and a note: an experiment marked running whose coordinator
    lease has lapsed has no coordinator any more (it crashed, or its machine went away), so it is
    shown as stopped ("coordinator gone since ...") rather than as a search that is progressing."""
    state = str(exp.get("state", "?"))
    if state != "running":
        return state, ""
    coordinator = exp.get("coordinator") or {}
    until = coordinator.get("lease_until")
    now = now or dt.datetime.now(dt.timezone.utc)
    if isinstance(until, dt.datetime) and _aware(until) < now:
        return "stopped", f"coordinator gone since {_aware(until):%Y-%m-%d %H:%M:%S} UTC ({_age(until)})"
    return state, ""


def error_line(doc: dict) -> str:
    """A failed trial's error on one line (store.error_text's words, first line only)."""
    error, result = doc.get("error") or {}, doc.get("result") or {}
    text = error_text({"type": error.get("type"), "message": error.get("message"), "failure": result.get("failure")})
    return (str(text).strip().splitlines() or [""])[0]


def render_status(store: Store, exp_key: str | None) -> tuple[str, bool]:
    """Text for `hyperdist status`, and whether the experiment is no longer running."""
    if exp_key is None:
        exps = store.list_experiments()
        lines = [f"{e['_id']}: {' '.join(filter(None, effective_state(e)))}" for e in exps] or ["no experiments"]
        return "\n".join(lines), True
    exp = store.get_experiment(exp_key)
    state, note = effective_state(exp)
    docs = store.history(exp_key)
    counts = {s: 0 for s in ("NEW", "RUNNING", "DONE", "ERROR")}
    for d in docs:
        counts[d["state"]] = counts.get(d["state"], 0) + 1
    finished = counts["DONE"] + counts["ERROR"]
    pruned = sum(1 for d in docs if (d.get("result") or {}).get("status") == "pruned")
    max_evals = exp.get("max_evals") or 0
    lines = [
        f"experiment {exp_key}  state={state}{f' ({note})' if note else ''}  objective={exp.get('objective')}",
        f"trials: {finished}/{max_evals} finished  " + "  ".join(f"{k}={v}" for k, v in counts.items())
        + (f"  (pruned={pruned})" if pruned else ""),
    ]
    for n, top in store.top_errors(exp_key, 1) if counts["ERROR"] else []:
        lines.append(f"errors: {counts['ERROR']}; most frequent: {n}x {(top.strip().splitlines() or [''])[0]}  "
                     f"[hyperdist trials {exp_key} --state error; hyperdist show {exp_key} TID]")
    rate = _rate_per_minute(d.get("finished") for d in docs)
    if rate:
        eta = (max_evals - finished) / rate if max_evals > finished else 0.0
        lines.append(f"rate: {rate:.1f} trials/min" + (f"  ETA: {eta:.1f} min" if state == "running" else ""))
    space = space_from_json(exp.get("space"))
    best = best_trial(store, exp_key, docs)
    if best is not None:
        lines.append(f"best: loss={best['result']['loss']:.6g} (trial {best['tid']}) "
                     f"params={json.dumps(space.readable(best['params']), default=str)}")
    X, loss = loss_table(space, docs)
    if np.isfinite(loss).sum() >= 10:
        ranked = sorted(importances(space, X, loss).items(), key=lambda kv: -kv[1])[:5]
        lines.append("importance: " + "  ".join(f"{k}={v:.2f}" for k, v in ranked))
    devices = collections.Counter(d["device"] for d in docs if d.get("device") and d["state"] in ("DONE", "ERROR"))
    if devices:
        lines.append("trials per device: " + "  ".join(f"{k}={v}" for k, v in sorted(devices.items())))
    coordinator = exp.get("coordinator") or {}
    if coordinator:
        lines.append(f"coordinator: {coordinator.get('owner')} lease until {_age(coordinator.get('lease_until'))}")
    now = dt.datetime.now(dt.timezone.utc)
    for d in docs:
        if d["state"] == "RUNNING":
            until = d.get("lease_until")
            expired = until is not None and _aware(until) < now
            on = f" on {d['device']}" if d.get("device") else ""
            lines.append(f"  worker {d.get('owner')}{on}: trial {d['tid']} claimed {_age(d.get('claimed'))}, "
                         f"last heartbeat {_age(d.get('heartbeat') or d.get('claimed'))}"
                         f"{'  LEASE EXPIRED' if expired else ''}")
    return "\n".join(lines), state != "running"


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _age(t: Any) -> str:
    if not isinstance(t, dt.datetime):
        return "?"
    seconds = (dt.datetime.now(dt.timezone.utc) - _aware(t)).total_seconds()
    return f"{seconds:.0f}s ago" if seconds >= 0 else f"in {-seconds:.0f}s"


def _rate_per_minute(times: Iterable[Any], window: int = 50) -> float | None:
    stamps = sorted(_aware(t) for t in times if isinstance(t, dt.datetime))[-window:]
    if len(stamps) < 2:
        return None
    span = (stamps[-1] - stamps[0]).total_seconds()
    return (len(stamps) - 1) / span * 60 if span > 0 else None


def export_trials(docs: list[dict], space: SearchSpace, fmt: str) -> str:
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
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
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


def _flat(doc: dict, space: SearchSpace) -> dict[str, Any]:
    row: dict[str, Any] = {"tid": doc["tid"], "state": doc["state"]}
    result = doc.get("result") or {}
    row["loss"] = result.get("loss")
    row["status"] = result.get("status")
    for step, value in sorted((doc.get("intermediate") or {}).items(), key=lambda kv: int(kv[0])):
        row[f"step.{step}"] = value
    for k, v in (doc.get("params") or {}).items():
        row[f"param.{k}"] = space.display(k, v)
        if space.is_choice(k):
            row[f"param.{k}_index"] = v
    for k, v in result.items():
        if k not in ("loss", "status"):
            row[f"result.{k}"] = v
    row["error"] = error_line(doc) if doc.get("state") == "ERROR" else None
    for k in ("attempts", "owner", "device", "claimed", "finished"):
        row[k] = doc.get(k)
    return row
