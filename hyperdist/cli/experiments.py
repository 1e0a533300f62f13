"""Commands that read experiments: status, best, list, export, plot, report."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .app import _with_store, main
from .search import _print_best

@main.command()
@click.argument("exp_key", required=False)
@click.option("--watch", is_flag=True, help="Refresh until the experiment is done.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option("--count", type=click.IntRange(min=1), help="With --watch: stop after this many refreshes.")
@_with_store
def status(store: Any, exp_key: str | None, watch: bool, interval: float, count: int | None) -> None:
    """Counts by state, best loss, rate, ETA and workers of an experiment (or all experiments)."""
    from ..status import render_status

    shown = 0
    while True:
        text, done = render_status(store, exp_key)
        if watch and shown:
            click.clear()
        click.echo(text)
        shown += 1
        if not watch or done or (count and shown >= count):
            return
        time.sleep(interval)


@main.command()
@click.argument("exp_key")
@_with_store
def best(store: Any, exp_key: str) -> None:
    """The best trial of an experiment as JSON: loss, flat params and the evaluated configuration."""
    from ..space import space_from_json

    exp = store.get_experiment(exp_key)
    _print_best(store, exp_key, space_from_json(exp["space"]))


@main.command(name="list")
@_with_store
def list_(store: Any) -> None:
    """All experiments with their state and progress."""
    rows = store.list_experiments()
    if not rows:
        click.echo("no experiments")
    for exp in rows:
        counts = store.counts(exp["_id"])
        finished = counts.get("DONE", 0) + counts.get("ERROR", 0)
        click.echo(f"{exp['_id']:<30} {exp.get('state', '?'):<8} {finished:>6}/{exp.get('max_evals', '?'):<6} "
                   f"objective={exp.get('objective')}")


@main.command()
@click.argument("exp_key")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@_with_store
def export(store: Any, exp_key: str, fmt: str, out: Path | None) -> None:
    """Every trial of an experiment as CSV, JSON or JSON lines."""
    from ..status import export_trials

    store.get_experiment(exp_key)
    text = export_trials(store.history(exp_key), fmt)
    if out:
        out.write_text(text)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("exp_key")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("plots"), show_default=True,
              help="Directory for the PNG and SVG files.")
@_with_store
def plot(store: Any, exp_key: str, out: Path) -> None:
    """Matplotlib pictures: history, slices, parallel coordinates, importance, contour, EDF, timeline,
    intermediate values (needs `pip install 'hyperdist[plot]'`)."""
    from ..views.data import ExperimentView
    from ..views.plots import plot_all

    for path in plot_all(ExperimentView.from_store(store, exp_key), out):
        click.echo(str(path))


@main.command()
@click.argument("exp_key")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True)
@_with_store
def report(store: Any, exp_key: str, out: Path) -> None:
    """The dashboard's experiment page as one self-contained, interactive HTML file that works offline
    (needs `pip install 'hyperdist[dashboard]'`)."""
    from ..views.data import ExperimentView
    from ..views.report import write_report

    click.echo(str(write_report(ExperimentView.from_store(store, exp_key), out)))
