"""Read-only views of an experiment: its best trial, a status summary, and flat exports."""
from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import math
from typing import Any, Iterable

import numpy as np

from .history import FAILED, OK, HistoryTable
from .views.importance import importances
from .result import STATUS_OK
from .space import SearchSpace, space_from_json
from .store import DONE, Store


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


def render_status(store: Store, exp_key: str | None) -> tuple[str, bool]:
    """Text for `hyperdist status`, and whether the experiment is finished."""
    if exp_key is None:
        exps = store.list_experiments()
        lines = [f"{e['_id']}: {e.get('state')}" for e in exps] or ["no experiments"]
        return "\n".join(lines), True
    exp = store.get_experiment(exp_key)
    docs = store.history(exp_key)
    counts = {s: 0 for s in ("NEW", "RUNNING", "DONE", "ERROR")}
    for d in docs:
        counts[d["state"]] = counts.get(d["state"], 0) + 1
    finished = counts["DONE"] + counts["ERROR"]
    pruned = sum(1 for d in docs if (d.get("result") or {}).get("status") == "pruned")
    max_evals = exp.get("max_evals") or 0
    lines = [
        f"experiment {exp_key}  state={exp.get('state')}  objective={exp.get('objective')}",
        f"trials: {finished}/{max_evals} finished  " + "  ".join(f"{k}={v}" for k, v in counts.items())
        + (f"  (pruned={pruned})" if pruned else ""),
    ]
    rate = _rate_per_minute(d.get("finished") for d in docs)
    if rate:
        eta = (max_evals - finished) / rate if max_evals > finished else 0.0
        lines.append(f"rate: {rate:.1f} trials/min  ETA: {eta:.1f} min")
    best = best_trial(store, exp_key, docs)
    if best is not None:
        lines.append(f"best: loss={best['result']['loss']:.6g} (trial {best['tid']}) params={json.dumps(best['params'])}")
    space = space_from_json(exp["space"])
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
    return "\n".join(lines), exp.get("state") == "done"


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


def export_trials(docs: list[dict], fmt: str) -> str:
    """CSV (one column per parameter and per scalar result key), JSON, or JSON lines."""
    rows = [_flat(d) for d in docs]
    if fmt == "json":
        return json.dumps(rows, indent=1, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, default=str) + "\n" for r in rows)
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(k for k, v in r.items() if not isinstance(v, (dict, list))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _flat(doc: dict) -> dict[str, Any]:
    row: dict[str, Any] = {"tid": doc["tid"], "state": doc["state"]}
    result = doc.get("result") or {}
    row["loss"] = result.get("loss")
    row["status"] = result.get("status")
    for step, value in sorted((doc.get("intermediate") or {}).items(), key=lambda kv: int(kv[0])):
        row[f"step.{step}"] = value
    for k, v in (doc.get("params") or {}).items():
        row[f"param.{k}"] = v
    for k, v in result.items():
        if k not in ("loss", "status"):
            row[f"result.{k}"] = v
    error = doc.get("error") or {}
    row["error"] = f"{error.get('type')}: {error.get('message')}" if error else None
    for k in ("attempts", "owner", "device", "claimed", "finished"):
        row[k] = doc.get(k)
    return row
