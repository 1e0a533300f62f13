"""The `hyperdist` command line: search, worker, status, best, list, export, server, demo."""
from __future__ import annotations

import functools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from .errors import HyperdistError, redact

MONGO = click.option("--mongo", envvar="HYPERDIST_MONGO_URL", metavar="URL",
                     help="MongoDB URL (mongodb://user:pass@host:port/db?tls=true...). Default: the embedded "
                          "local server in --data-dir. [env HYPERDIST_MONGO_URL]")
DB = click.option("--db", envvar="HYPERDIST_DB", default=None, metavar="NAME",
                  help="Database name (default: from the URL path, else 'hyperdist'). [env HYPERDIST_DB]")
DATA_DIR = click.option("--data-dir", envvar="HYPERDIST_DATA_DIR", default=".hyperdist", show_default=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Where the embedded server keeps its data. [env HYPERDIST_DATA_DIR]")


class _Group(click.Group):
    """Prints user errors as one redacted line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HyperdistError as exc:
            click.echo(f"error: {redact(str(exc))}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="hyperdist")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Distributed hyperparameter search with TPE over MongoDB."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s[%(process)d] %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("pymongo").setLevel(logging.WARNING)


def _connection(mongo: str | None, data_dir: Path, db: str | None, start: bool = True):
    from .launcher import connect

    return connect(mongo, data_dir, start=start, db=db)


def _with_store(fn: Callable) -> Callable:
    """Open the store for a read-only command, and stop an embedded server this command started."""
    @MONGO
    @DB
    @DATA_DIR
    @functools.wraps(fn)
    def wrapper(mongo: str | None, db: str | None, data_dir: Path, **kwargs: Any) -> Any:
        conn = _connection(mongo, data_dir, db)
        try:
            return fn(conn.store, **kwargs)
        finally:
            conn.close()
    return wrapper


# --- search --------------------------------------------------------------------------------------
@main.command()
@click.argument("objective")
@click.option("--space", "space_ref", required=True, metavar="REF",
              help="module:attr, path/to/file.py:attr, or a JSON space file.")
@click.option("--max-evals", type=click.IntRange(min=1), required=True, help="Total trials, history included.")
@MONGO
@DB
@DATA_DIR
@click.option("--exp", "exp_key", metavar="KEY", help="Experiment key (default: the objective's name).")
@click.option("--workers", type=click.IntRange(min=0), default=4, show_default=True,
              help="Local worker processes to start (0: workers run elsewhere).")
@click.option("--queue", type=click.IntRange(min=0), default=None,
              help="Trials kept waiting to be claimed, beyond one running per worker [default: 2 x workers, at least 4, "
                   "more when trials finish faster than the coordinator ticks].")
@click.option("--resume", is_flag=True, help="Continue an existing experiment from its stored history.")
@click.option("--allow-space-change", is_flag=True, help="Resume even though the space differs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--algo", type=click.Choice(["tpe", "rand"]), default="tpe", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--loss-threshold", type=float, help="Stop once a loss at or below this is found.")
@click.option("--subprocess", "isolate", is_flag=True, help="Workers run each trial in a fresh process.")
@click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per trial.")
@click.option("--pruner", type=click.Choice(["none", "median", "asha"]), default="none", show_default=True,
              help="Stop unpromising trials early (objectives taking a second argument report progress).")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar.")
def search(objective: str, space_ref: str, max_evals: int, mongo: str | None, db: str | None, data_dir: Path,
           exp_key: str | None, workers: int, queue: int | None, resume: bool, allow_space_change: bool, seed: int,
           algo: str, timeout: float | None, loss_threshold: float | None, isolate: bool,
           trial_timeout: float | None, pruner: str, no_progress: bool) -> None:
    """Run a search: a coordinator here, WORKERS local worker processes, results in MongoDB.

    Without --mongo a local server is started in --data-dir and stopped at the end.
    """
    from .algorithms import rand, tpe
    from .coordinator import Coordinator, StopRules
    from .launcher import spawn_workers, stop_workers, wait_workers
    from .progress import ProgressBar
    from .pruning import make_pruner, pruner_config
    from .reference import canonical, load_callable, load_space, split_reference
    from .space import compile_space

    ref = canonical(objective)
    load_callable(ref)                           # fail now, before anything is written
    space = compile_space(load_space(space_ref))
    space.to_json()                              # a space that cannot be stored fails here too
    exp_key = exp_key or split_reference(ref)[1]
    conn = _connection(mongo, data_dir, db)
    procs: list = []
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        coord = Coordinator(conn.store, exp_key, space, rand.suggest if algo == "rand" else tpe.suggest,
                            StopRules(max_evals, timeout, loss_threshold), seed=seed, workers=max(1, workers),
                            queue=queue, objective=ref, algo_info={"name": algo},
                            options={"pruner": pruner_config(make_pruner(pruner))} if pruner != "none" else {})
        resumed = coord.start(resume=resume, allow_space_change=allow_space_change)
        click.echo(f"{'resumed' if resumed else 'started'} experiment {exp_key!r}: {coord.finished} of "
                   f"{max_evals} trials done; server {conn.store.url_redacted}", err=True)
        procs = spawn_workers(workers, conn.url, exp_key, ref, db=conn.store.db_name, isolate=isolate,
                              trial_timeout=trial_timeout, log_dir=data_dir if workers else None)
        bar = ProgressBar(max_evals, not no_progress, initial=coord.finished)
        try:
            coord.run(lambda p: bar.update(p.finished, p.best_loss))
        except KeyboardInterrupt:
            bar.close()
            click.echo("interrupted: handing unfinished trials back ...", err=True)
            coord.stop()
            stop_workers(procs)
            click.echo(f"stopped at {coord.finished} trials; continue with the same command plus --resume",
                       err=True)
            sys.exit(130)
        bar.close()
        wait_workers(procs, 30)
        _print_best(conn.store, exp_key, space)
    finally:
        stop_workers(procs, graceful=True)
        conn.close()


@main.command()
@click.option("--max-evals", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the demo experiment.")
@MONGO
@DATA_DIR
@click.pass_context
def demo(ctx: click.Context, max_evals: int, workers: int, resume: bool, mongo: str | None, data_dir: Path) -> None:
    """Tune a scikit-learn classifier on the digits data set (needs `pip install 'hyperdist[demo]'`)."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise HyperdistError("the demo needs scikit-learn: pip install 'hyperdist[demo]'") from None
    ctx.invoke(search, objective="hyperdist.demo:objective", space_ref="hyperdist.demo:space", max_evals=max_evals,
               mongo=mongo, db=None, data_dir=data_dir, exp_key="demo-digits", workers=workers, queue=None,
               resume=resume, allow_space_change=False, seed=0, algo="tpe", timeout=None, loss_threshold=None,
               isolate=False, trial_timeout=None, pruner="none", no_progress=False)


def _print_best(store: Any, exp_key: str, space: Any) -> None:
    from .status import best_trial

    best = best_trial(store, exp_key)
    if best is None:
        click.echo("no trial finished with status ok")
        return
    click.echo(json.dumps({"tid": best["tid"], "loss": best["result"]["loss"], "params": best["params"],
                           "config": space.eval(best["params"])}, indent=2, default=str))


# --- worker --------------------------------------------------------------------------------------
@main.command()
@click.option("--mongo", envvar="HYPERDIST_MONGO_URL", required=True, metavar="URL",
              help="MongoDB URL. [env HYPERDIST_MONGO_URL]")
@DB
@click.option("--exp", "exp_key", metavar="KEY", help="Only run trials of this experiment.")
@click.option("--allow", multiple=True, envvar="HYPERDIST_ALLOW", metavar="MODULE",
              help="Objectives this worker may import: a module (and its submodules), a directory or file, "
                   "or a full reference. Repeatable. [env HYPERDIST_ALLOW, space-separated]")
@click.option("--subprocess", "isolate", is_flag=True, help="Evaluate each trial in a fresh Python process.")
@click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per trial.")
@click.option("--lease", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds a trial stays ours without a heartbeat.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Exit after this many seconds without a trial.")
@click.option("--drain", is_flag=True, help="On SIGTERM/SIGINT finish the current trial instead of handing it back.")
@click.option("--max-consecutive-failures", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--max-trials", type=click.IntRange(min=1), help="Exit after this many trials.")
@click.option("--prefetch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most trials claimed at once; trials of at most 60 ms are claimed as many as fit in 120 ms.")
def worker(mongo: str, db: str | None, exp_key: str | None, allow: tuple[str, ...], isolate: bool,
           trial_timeout: float | None, lease: float, idle_timeout: float, drain: bool,
           max_consecutive_failures: int, max_trials: int | None, prefetch: int) -> None:
    """Claim trials, evaluate their objective, report results; stateless, run as many as you like."""
    from .mongotrials import parse_url
    from .store import Store
    from .worker import Worker, WorkerConfig

    if not allow:
        raise HyperdistError("a worker needs --allow MODULE: it only imports objectives its operator allowed")
    url, db_name = parse_url(mongo, db)
    config = WorkerConfig(allow=[a for entry in allow for a in entry.split()], exp_key=exp_key, isolate=isolate,
                          trial_timeout=trial_timeout, lease_seconds=lease, idle_timeout=idle_timeout,
                          drain=drain, max_consecutive_failures=max_consecutive_failures, max_trials=max_trials,
                          prefetch=prefetch)
    w = Worker(Store(url, db=db_name), config)
    w.install_signal_handlers()
    stats = w.run()
    sys.exit(stats.exit_code)


# --- looking at experiments ----------------------------------------------------------------------
@main.command()
@click.argument("exp_key", required=False)
@click.option("--watch", is_flag=True, help="Refresh until the experiment is done.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option("--count", type=click.IntRange(min=1), help="With --watch: stop after this many refreshes.")
@_with_store
def status(store: Any, exp_key: str | None, watch: bool, interval: float, count: int | None) -> None:
    """Counts by state, best loss, rate, ETA and workers of an experiment (or all experiments)."""
    from .status import render_status

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
    from .space import space_from_json

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
    from .status import export_trials

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
    """Loss per trial, each parameter against the loss, the best trials, and a worker timeline."""
    from .plots import plot_all
    from .space import space_from_json

    exp = store.get_experiment(exp_key)
    for path in plot_all(store.history(exp_key), space_from_json(exp["space"]), out):
        click.echo(str(path))


@main.command()
@click.argument("exp_key")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True)
@_with_store
def report(store: Any, exp_key: str, out: Path) -> None:
    """One self-contained HTML file: best trial, parameter importance, plots, sortable trial table."""
    from .report import render
    from .space import space_from_json

    exp = store.get_experiment(exp_key)
    out.write_text(render(exp, store.history(exp_key), space_from_json(exp["space"])))
    click.echo(str(out))


# --- the embedded server -------------------------------------------------------------------------
@main.group()
def server() -> None:
    """Run the local MongoDB-wire server for workers started by hand."""


@server.command("start")
@DATA_DIR
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="Default: a free port.")
def server_start(data_dir: Path, host: str, port: int) -> None:
    from .server import start_server

    s = start_server(data_dir, host=host, port=port)
    click.echo(f"{s.kind} running (pid {s.pid}) at {s.url}; data in {s.data_dir}")


@server.command("stop")
@DATA_DIR
def server_stop(data_dir: Path) -> None:
    from .server import stop_server

    click.echo("stopped" if stop_server(data_dir) else f"no server running in {data_dir}")


@server.command("status")
@DATA_DIR
def server_status_cmd(data_dir: Path) -> None:
    from .server import server_status

    s = server_status(data_dir)
    click.echo(f"{s.kind} running (pid {s.pid}) at {s.url}" if s else f"no server running in {data_dir}")
    sys.exit(0 if s else 1)


if __name__ == "__main__":
    main()
