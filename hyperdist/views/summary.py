"""What the pages show beside the plots: an experiment's summary (the experiments list, the cards
on its page), its setup (space, algorithm, coordinator lease) and its workers with their heartbeats."""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from hyperdist.store.document import FINISHED, SUMMARY_FIELDS, ExperimentState, TrialState, fields, planned, utc
from hyperdist.views.data import FAILED, NEW, OK, PRUNED, RUNNING, ExperimentView, trial_record


def setup(view: ExperimentView) -> dict:
    """The space, the algorithm and its settings, the coordinator and the workers."""
    space = []
    describe = view.space.describe()
    for spec in view.space.params:
        when = " or ".join(" and ".join(f"{lab} = {view.space.display(lab, opt)}" for lab, opt in path)
                           for path in spec.conditions) if not spec.unconditional else "always"
        space.append({"label": spec.label, "distribution": describe[spec.label], "active": when})
    coordinator = fields(view.exp.get("coordinator"))
    lease = utc(coordinator.get("lease_until"))
    return {"space": space, "objective": view.exp.get("objective"), "algo": view.exp.get("algo"),
            "options": view.exp.get("options"), "seed": view.exp.get("seed"),
            "max_evals": planned(view.exp.get("max_evals")), "created": view.exp.get("created"),
            "coordinator": {"owner": coordinator.get("owner"), "lease_until": lease,
                            "expired": bool(lease and lease < view.now)} if coordinator else None,
            "workers": workers(view.trials, view.now)}


def workers(trials: Iterable[dict], now: dt.datetime) -> list[dict]:
    """Every worker seen: trials finished, last finish, and what it runs now with its heartbeat."""
    seen: dict[str, dict] = {}
    for t in trials:
        if not t.get("owner"):
            continue
        w = seen.setdefault(str(t["owner"]), {"owner": str(t["owner"]), "finished": 0, "last_finished": None,
                                              "running": [], "heartbeat_age": None, "lease_expired": False})
        if t["state"] in FINISHED:
            w["finished"] += 1
            if t["finished"] and (w["last_finished"] is None or t["finished"] > w["last_finished"]):
                w["last_finished"] = t["finished"]
        elif t["state"] == TrialState.RUNNING:
            w["running"].append(t["tid"])
            beat = t.get("heartbeat") or t.get("claimed")
            if beat is not None:
                age = (now - beat).total_seconds()
                w["heartbeat_age"] = age if w["heartbeat_age"] is None else min(age, w["heartbeat_age"])
            w["lease_expired"] |= bool(t.get("lease_until") and t["lease_until"] < now)
    return sorted(seen.values(), key=lambda w: (not w["running"], w["owner"]))


def rate_per_minute(times: Iterable[Any], recent: bool, window: int = 50) -> float | None:
    """Trials finished per minute: over the last `window` finishes while a search runs (its pace now),
    over the whole run once it has ended (the last 50 of a finished search were its fastest stretch)."""
    stamps = sorted(utc(t) for t in times if isinstance(t, dt.datetime))
    stamps = stamps[-window:] if recent else stamps
    if len(stamps) < 2:
        return None
    span = (stamps[-1] - stamps[0]).total_seconds()
    return (len(stamps) - 1) / span * 60 if span > 0 else None


def summarize(exp: dict, trials: list[dict], now: dt.datetime) -> dict:
    """What the experiments list shows of one experiment: state, progress, best, rate, workers."""
    counts = {k: 0 for k in (OK, PRUNED, FAILED, RUNNING, NEW)}
    for t in trials:
        counts[t["kind"]] += 1
    oks = [t for t in trials if t["kind"] == OK]
    best = min(oks, key=lambda t: t["loss"]) if oks else None
    stamps = sorted(t["finished"] for t in trials if t["finished"] is not None)
    return {"key": exp["_id"], "state": exp.get("state"), "objective": exp.get("objective"),
            "max_evals": planned(exp.get("max_evals")), "finished": counts[OK] + counts[PRUNED] + counts[FAILED],
            "counts": counts, "best_loss": best["loss"] if best else None, "best_tid": best["tid"] if best else None,
            "rate": rate_per_minute(stamps, recent=exp.get("state") == ExperimentState.RUNNING),
            "workers": len({t["owner"] for t in trials if t["kind"] == RUNNING}),
            "created": exp.get("created"), "updated": exp.get("updated"),
            "last_finished": stamps[-1] if stamps else None}


def experiment_summaries(store: Any) -> list[dict]:
    """One summary per experiment, each from a narrow read of its trials."""
    now = dt.datetime.now(dt.timezone.utc)
    return [summarize(exp, [trial_record(d) for d in store.iter_history(exp["_id"], SUMMARY_FIELDS)], now)
            for exp in store.list_experiments()]
