"""Commands that read experiments: status, best, list, export, plot, report."""
from __future__ import annotations

import collections
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from hyperdist.errors import HyperdistError
from hyperdist.cli.app import COUNT_MAX, _with_store, echo, exp_key_option, main, required_key


@main.command()
@exp_key_option
@click.option("--watch", is_flag=True, help="Refresh until the experiment is no longer running.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="With --watch: seconds between refreshes.")
@click.option("--count", type=click.IntRange(min=1, max=COUNT_MAX), help="With --watch: stop after this many refreshes.")
@_with_store
def status(store: Any, exp_key: str | None, watch: bool, interval: float, count: int | None) -> None:
    """Counts by state, errors, best loss, rate, ETA and workers of an experiment (without EXP: the
    only one, or every experiment's state)."""
    from hyperdist.views.status import render_status

    shown = 0
    while True:
        text, done = render_status(store, exp_key)
        if watch and shown:
            click.clear()
        echo(text)
        shown += 1
        if not watch or done or (count and shown >= count):
            return
        time.sleep(interval)


@main.command()
@exp_key_option
@_with_store
def best(store: Any, exp_key: str | None) -> None:
    """The best trial of an experiment as JSON: loss, params (a choice as its option), the evaluated
    configuration and the stored params (a choice as its index). Exits with 1 when no trial finished
    with status ok."""
    from hyperdist.space.compiled import space_from_json
    from hyperdist.views.status import best_json, best_trial

    exp_key = required_key(exp_key)
    space = space_from_json(store.get_experiment(exp_key).get("space"))
    found = best_trial(store, exp_key)
    if found is None:
        echo(f"no trial of {exp_key!r} finished with status ok (hyperdist trials {shlex.quote(exp_key)} --state error "
                   "shows why)", err=True)
        sys.exit(1)
    echo(best_json(found, space))


@main.command(name="list")
@_with_store
def list_(store: Any) -> None:
    """All experiments with their state and progress."""
    from hyperdist.store import TrialState
    from hyperdist.store.document import planned
    from hyperdist.views.status import effective_state

    rows = store.list_experiments()
    if not rows:
        echo("no experiments")
    for exp in rows:
        counts = store.counts(exp["_id"])
        finished = counts[TrialState.DONE] + counts[TrialState.ERROR]
        state, note = effective_state(exp)
        max_evals = planned(exp.get("max_evals"))
        echo(f"{exp['_id']:<30} {state:<8} {finished:>6}/{'?' if max_evals is None else max_evals:<6} "
                   f"errors={counts[TrialState.ERROR]:<5} objective={exp.get('objective')}"
                   + (f"  ({note})" if note else ""))


@main.command()
@exp_key_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv", show_default=True,
              help="csv: one column per parameter and scalar result key; json: one array; jsonl: one object a line.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@_with_store
def export(store: Any, exp_key: str | None, fmt: str, out: Path | None) -> None:
    """Every trial of an experiment as CSV, JSON or JSON lines. A choice shows its option
    (param.model = svm) and keeps the stored index beside it (param.model_index = 0); JSON writes
    NaN and infinities as null."""
    from hyperdist.space.compiled import space_from_json
    from hyperdist.views.status import export_trials

    exp_key = required_key(exp_key)
    exp = store.get_experiment(exp_key)
    text = export_trials(store.records(exp_key), space_from_json(exp.get("space")), fmt)
    if out:
        out.write_text(text)
    else:
        echo(text, nl=False)


@main.command()
@exp_key_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("plots"), show_default=True,
              help="Directory for the PNG and SVG files.")
@_with_store
def plot(store: Any, exp_key: str | None, out: Path) -> None:
    """Matplotlib pictures: history, slices, parallel coordinates, importance, contour, EDF, timeline,
    intermediate values (needs `pip install 'hyperdist[plot]'`)."""
    from hyperdist.views.data import ExperimentView
    from hyperdist.views.plots import plot_all

    key = required_key(exp_key)
    view = ExperimentView.from_store(store, key)
    if not view.ok.any():
        states = collections.Counter(str(t["state"]).lower() for t in view.trials)
        raise HyperdistError(f"experiment {key!r} has no trial with an ok loss yet "
                             f"({', '.join(f'{n} {k}' for k, n in sorted(states.items())) or 'no trials'}): "
                             f"nothing to plot; `hyperdist trials {shlex.quote(key)} --state error` lists the failures")
    for path in plot_all(view, out):
        echo(str(path))


@main.command()
@exp_key_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file to write.")
@_with_store
def report(store: Any, exp_key: str | None, out: Path) -> None:
    """The dashboard's experiment page as one self-contained, interactive HTML file that works offline
    (needs `pip install 'hyperdist[dashboard]'`)."""
    from hyperdist.views.data import ExperimentView
    from hyperdist.views.report import write_report

    echo(str(write_report(ExperimentView.from_store(store, required_key(exp_key)), out)))
