"""Commands about single trials and removal: `trials` (a table), `show` (one trial, traceback
included) and `delete` (an experiment with its trials and snapshots)."""
from __future__ import annotations

import datetime as dt
import json
import shlex
from typing import Any

import click

from hyperdist.errors import HyperdistError
from hyperdist.cli.app import COUNT_MAX, SEED_MAX, _with_store, echo, exp_key_option, main, required_key

STATES = ("done", "pruned", "error", "new", "running")  # as the table's state column says them


@main.command()
@exp_key_option
@click.option("--state", type=click.Choice(STATES),
              help="Only trials in this state (done: finished with a result, pruned ones excepted).")
@click.option("--limit", type=click.IntRange(min=1, max=COUNT_MAX), help="Only the last N trials (highest trial ids).")
@_with_store
def trials(store: Any, exp_key: str | None, state: str | None, limit: int | None) -> None:
    """A table of an experiment's trials: id, state, loss, parameters (a choice as its option),
    worker, attempts, duration and the first line of the error. `hyperdist show EXP TID` shows one
    trial in full, its traceback included."""
    from hyperdist.space.compiled import space_from_json
    from hyperdist.store import TrialState
    from hyperdist.views.status import error_line

    exp_key = required_key(exp_key)
    space = space_from_json(store.get_experiment(exp_key).get("space"))
    rows = [["tid", "state", "loss", "params", "worker", "attempts", "duration", "error"]]
    stored = TrialState.DONE if state == "pruned" else TrialState(state.upper()) if state else None
    for rec in store.find_trials(exp_key, stored, limit, pruned={"pruned": True, "done": False}.get(state or "")):
        readable = space.readable(rec.params)
        rows.append([str(rec.tid), _state(rec), _number(rec.result.get("loss")),
                     _cut(" ".join(f"{k}={_number(v)}" for k, v in readable.items()), 100), rec.owner or "-",
                     str(rec.attempts), _duration(rec),
                     error_line(rec)[:100] if rec.state == TrialState.ERROR else ""])
    if len(rows) == 1:
        echo(f"no {state + ' ' if state else ''}trials in {exp_key!r}")
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


@main.command(context_settings={"ignore_unknown_options": True})  # `show EXP -1`: a bad TID, not an option
@exp_key_option
@click.argument("rest", metavar="TID", required=False)
@_with_store
def show(store: Any, exp_key: str | None, rest: str | None) -> None:
    """One trial in full: parameters (a choice as its option and stored index), the configuration
    the objective received, result, error with its traceback, worker, attempts and timings."""
    from hyperdist.space.compiled import space_from_json

    exp_key = required_key(exp_key)
    if rest is None or not rest.isdigit() or int(rest) > SEED_MAX:
        got = "none given" if rest is None else f"got {rest!r}"
        raise HyperdistError(f"TID must be a trial id, a whole number below 2**63 ({got}): "
                             f"`hyperdist show {shlex.quote(exp_key)} 7`; `hyperdist trials {shlex.quote(exp_key)}` "
                             "lists them")
    space = space_from_json(store.get_experiment(exp_key).get("space"))
    rec = store.get_trial(exp_key, int(rest))
    params = rec.params
    echo(f"trial {rec.tid} of {exp_key!r}: {_state(rec)}")
    echo("params:")
    for label, value in params.items():
        shown = space.display(label, value)
        echo(f"  {label} = {shown!r} (option {value})" if space.is_choice(label) else f"  {label} = {value!r}")
    try:
        config = json.dumps(space.eval(params), indent=2, default=str)
    except Exception as exc:  # a trial of a changed space may no longer evaluate; say so, show the rest
        config = f"(cannot be rebuilt from these params: {type(exc).__name__}: {exc})"
    echo("config:\n" + _indent(config))
    if rec.result:
        echo("result:\n" + _indent(json.dumps(rec.result, indent=2, default=str)))
    if rec.intermediate:
        steps = sorted(rec.intermediate.items(), key=lambda kv: int(kv[0]))
        echo("reported: " + ", ".join(f"step {k}: {_number(v)}" for k, v in steps))
    error = rec.error
    if error:
        # a message's own line breaks stay inside the block, indented, so it cannot pass for other lines
        echo(f"error: {error.get('type')}: " + _indent(str(error.get("message"))).lstrip())
        if error.get("traceback"):
            echo(_indent(str(error["traceback"]).rstrip()))
    echo(f"worker: {rec.owner or '-'}  attempts: {rec.attempts}")
    if rec.lost is not None:
        lost = rec.lost
        echo(f"attempt {lost.get('attempt', '?')} was lost: worker {str(lost.get('owner') or '?')[:80]} stopped renewing "
                   f"its lease (it died or hung) by {_when(lost.get('at'))}, so the trial was handed out again")
    echo("  ".join(f"{k}: {_when(getattr(rec, k))}" for k in ("created", "claimed", "finished"))
               + f"  duration: {_duration(rec)}")


@main.command()
@exp_key_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_with_store
def delete(store: Any, exp_key: str | None, yes: bool) -> None:
    """Delete an experiment, its trials and its history snapshots (asks first). Refused while a
    coordinator holds the experiment."""
    from hyperdist.store import ExperimentState
    from hyperdist.store.document import fields
    from hyperdist.views.status import effective_state

    exp_key = required_key(exp_key)
    exp = store.get_experiment(exp_key)
    state, _ = effective_state(exp)
    if state == ExperimentState.RUNNING and exp.get("coordinator"):  # a lapsed lease makes the state "stopped"
        owner = fields(exp["coordinator"]).get("owner")
        raise HyperdistError(f"experiment {exp_key!r} has a running coordinator ({owner}): stop the search first, "
                             "or wait until its lease lapses")
    counts = store.counts(exp_key)
    if not yes:
        click.confirm(f"delete experiment {exp_key!r} ({state}, {sum(counts.values())} trials) and its snapshots?",
                      abort=True)
    n = store.delete_experiment(exp_key)
    echo(f"deleted experiment {exp_key!r} and {n} trials")


def _state(rec: Any) -> str:
    """The trial's state, or PRUNED for a done trial a pruner stopped (the table's one extra word)."""
    return "PRUNED" if rec.status == "pruned" else str(rec.state)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cut(text: str, width: int) -> str:
    """One table cell at most `width` wide (a space of hundreds of parameters made rows of thousands);
    `hyperdist show EXP TID` prints a trial's every parameter."""
    return text if len(text) <= width else text[:width - 3] + "..."


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _when(t: Any) -> str:
    """A stored time as a person reads it; '-' for none (or for what is not a time)."""
    from hyperdist.store.document import utc

    when = utc(t)
    return f"{when:%Y-%m-%d %H:%M:%S} UTC" if when is not None else "-"


def _duration(rec: Any) -> str:
    """Claimed to finished (or to now, while it runs); records hold aware UTC times. A trial handed
    back to the queue (NEW again) has no duration, whatever its last claim was."""
    from hyperdist.store import TrialState

    if rec.claimed is None or rec.state == TrialState.NEW:
        return "-"
    return f"{((rec.finished or dt.datetime.now(dt.timezone.utc)) - rec.claimed).total_seconds():.2f}s"
