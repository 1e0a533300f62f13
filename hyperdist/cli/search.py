"""`hyperdist search` and `hyperdist demo`: a coordinator here, workers on this machine."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from hyperdist.errors import ExperimentExists, HyperdistError, SearchStopped
from hyperdist.cli.app import COUNT_MAX, DATA_DIR, DB, MONGO, SEED_MAX, _connection, echo, main

@main.command()
@click.argument("objective")
@click.option("--space", "space_ref", required=True, metavar="REF",
              help="module:attr, path/to/file.py:attr, or a JSON space file.")
@click.option("--max-evals", type=click.IntRange(min=1, max=COUNT_MAX), required=True, help="Total trials, history included.")
@MONGO
@DB
@DATA_DIR
@click.option("--exp", "exp_key", metavar="KEY",
              help="Experiment key (default: FILE_STEM.FUNCTION or MODULE.FUNCTION of the objective).")
@click.option("--workers", type=click.IntRange(min=0, max=COUNT_MAX), default=None,
              help="Local worker processes to start (0: workers run elsewhere). [default: 4, or one per GPU with --gpus]")
@click.option("--gpus", metavar="all|0,1,3", help="Local workers take turns over these GPUs, each worker seeing only "
                                                  "its device (CUDA_VISIBLE_DEVICES); 'all' as for `hyperdist worker`.")
@click.option("--queue", type=click.IntRange(min=0, max=COUNT_MAX), default=None,
              help="Trials kept waiting to be claimed, beyond one running per worker [default: 2 x workers, at least 4, "
                   "more when trials finish faster than the coordinator ticks].")
@click.option("--resume", is_flag=True, help="Continue an existing experiment from its stored history.")
@click.option("--allow-space-change", is_flag=True, help="Resume even though the space differs.")
@click.option("--allow-objective-change", is_flag=True,
              help="Resume even though the objective differs from the stored one (workers then run the new one).")
@click.option("--seed", type=click.IntRange(min=0, max=SEED_MAX), default=0, show_default=True,
              help="Seed of the suggestions: the same seed and history suggest the same trials.")
@click.option("--algo", type=click.Choice(["tpe", "rand"]), default="tpe", show_default=True,
              help="tpe: Tree-structured Parzen Estimator; rand: random search.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--loss-threshold", type=float, help="Stop once a loss at or below this is found.")
@click.option("--subprocess", "isolate", is_flag=True, help="Workers run each trial in a fresh process.")
@click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per trial (at most 30 days). Stored with the experiment, so workers started by hand "
                   "apply it too; a worker's own --trial-timeout wins.")
@click.option("--pruner", type=click.Choice(["none", "median", "asha"]), default="none", show_default=True,
              help="Stop unpromising trials early (objectives taking a second argument report progress).")
@click.option("--log", "log_to", type=click.Choice(["mlflow"]),
              help="Also log the experiment to MLflow (MLFLOW_TRACKING_URI): a parent run, a child run per trial.")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar.")
def search(objective: str, space_ref: str, max_evals: int, mongo: str | None, db: str | None, data_dir: Path,
           exp_key: str | None, workers: int | None, gpus: str | None, queue: int | None, resume: bool,
           allow_space_change: bool, allow_objective_change: bool, seed: int,
           algo: str, timeout: float | None, loss_threshold: float | None, isolate: bool,
           trial_timeout: float | None, pruner: str, log_to: str | None, no_progress: bool) -> None:
    """Run a search: a coordinator here, WORKERS local worker processes, results in MongoDB.

    Without --mongo a local server is started in --data-dir and stopped at the end.
    """
    from hyperdist.algorithms import rand, tpe
    from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
    from hyperdist.distributed.gpus import parse_gpus
    from hyperdist.distributed.runnable import checked_timeout
    from hyperdist.objective.pruning import pruner_options
    from hyperdist.objective.reference import canonical, load_callable, load_space
    from hyperdist.distributed.session import Interrupted, stop_signals
    from hyperdist.space.compiled import compile_space
    from hyperdist.integrations.tracking import make_log
    from hyperdist.server.prefork import prefork
    import hyperdist.distributed.worker  # noqa: F401  (imported once, inherited by the forked workers)

    # the local workers, forked before the objective is loaded, the server reached or a thread started:
    # they skip a fresh interpreter's imports (server/prefork.py); with --gpus, fresh interpreters
    forks = prefork((4 if workers is None else workers) if gpus is None else 0, _worker_command)
    checked_timeout(trial_timeout, "--trial-timeout")
    ref = canonical(objective)
    load_callable(ref)                           # fail now, before anything is written
    space = compile_space(load_space(space_ref))
    space.to_json()                              # a space that cannot be stored fails here too
    exp_key = exp_key or default_key(ref)
    devices = parse_gpus(gpus) if gpus is not None else None
    workers = (len(devices) if devices else 4) if workers is None else workers
    tlog = make_log(log_to)  # a missing library fails here, before anything is written
    if tlog is not None:  # MLflow's HTTP retries would log a line each; the mirror warns once instead
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    data_dir.mkdir(parents=True, exist_ok=True)
    with stop_signals():
        conn = None
        signalled = False  # a signal stops the server this command started; a search that ends keeps it for reads
        try:
            conn = _connection(mongo, data_dir, db, watch=True)
            _check_key(conn.store, exp_key, resume)
            coord = Coordinator(conn.store, exp_key, space, rand.suggest if algo == "rand" else tpe.suggest,
                                StopRules(max_evals, timeout, loss_threshold),
                                CoordinatorConfig(seed=seed, workers=max(1, workers), queue=queue), objective=ref,
                                algo_info={"name": algo},
                                options=dict(pruner_options(pruner), **({"trial_timeout": trial_timeout}
                                                                        if trial_timeout else {})))
            _run(conn, coord, space, workers, isolate, trial_timeout, data_dir, not no_progress, devices, tlog, forks,
                 resume=resume, allow_space_change=allow_space_change,
                 allow_objective_change=allow_objective_change)
        except KeyboardInterrupt as exc:  # Interrupted (a signal) too; the session told it if it ran
            signalled = True
            if not getattr(exc, "told", False):
                echo(f"interrupted by {exc}" if isinstance(exc, Interrupted) else "interrupted", err=True)
            sys.exit(exc.exit_code if isinstance(exc, Interrupted) else 130)
        except SearchStopped as exc:
            sys.exit(exc.exit_code)
        finally:
            if forks is not None:  # the forked workers not started exit
                forks.close()
            if conn is not None:  # after the workers; the server stays up for reads (keeper.py) unless signalled
                conn.close(stop_started_server=signalled)


def _run(conn: Any, coord: Any, space: Any, workers: int, isolate: bool, trial_timeout: float | None,
         data_dir: Path, progress: bool, devices: list[str] | None, tlog: Any, forks: Any, **start: bool) -> None:
    """Start the coordinator and the local workers and watch the search to its end; whatever ends
    it, the local workers are stopped (and the tracker told) before this returns."""
    from hyperdist.algorithms import special
    from hyperdist.server.launcher import signal_workers, spawn_workers, stop_workers, wait_workers
    from hyperdist.local.progress import ProgressBar
    from hyperdist.distributed.session import Session
    from hyperdist.integrations.tracking import store_mirror
    from hyperdist.store import ExperimentState, TrialState

    procs: list = []
    mirror, ended = None, ExperimentState.STOPPED
    try:
        resumed = coord.start(**start)
        if tlog is not None:
            mirror = store_mirror(tlog, conn.store, coord.exp_key, space,
                                  {"objective": coord.objective, "algo": coord.algo_info.get("name"), "seed": coord.seed,
                                   "max_evals": coord.rules.max_evals, "pruner": (coord.options.get("pruner") or {}).get("name")})
            coord.on_finished = mirror.finished
        done = (f"{coord.finished} of {coord.rules.max_evals} trials done" if coord.finished < coord.rules.max_evals else
                f"{coord.finished} trials done, already --max-evals {coord.rules.max_evals} or more: nothing more to run "
                "(a larger --max-evals runs more)")
        echo(f"{'resumed' if resumed else 'started'} experiment {coord.exp_key!r}: {done}; server "
             f"{conn.store.url_redacted}", err=True)
        try:
            coord.fill()
            procs = spawn_workers(workers, conn.url, coord.exp_key, coord.objective, db=conn.store.db_name,
                                  isolate=isolate, trial_timeout=trial_timeout,
                                  log_dir=data_dir if workers else None, devices=devices, forks=forks)
            if coord.algo_info.get("name") == "tpe":  # loaded while the workers start, not at the 20th trial
                special.preload()
            session = Session(coord, ProgressBar(coord.rules.max_evals, progress, initial=coord.finished),
                              workers=procs, resume_hint="continue with the same command plus --resume",
                              trial_timeout=trial_timeout)
            if conn.watch is not None:  # its lines go above the progress bar
                conn.watch.say = session.say
        except BaseException:  # before the session watches: the experiment is ours to mark stopped
            coord.stop()
            raise
        session.run()
        ended = ExperimentState.DONE
        if not coord.open or not conn.store.counts(coord.exp_key)[TrialState.RUNNING]:
            signal_workers(procs)  # all idle: stop them now, not when they next look (~1-2 s)
        summary, any_ok = session.summary()
        echo(summary, err=True)
        wait_workers(procs, 30)  # a stop rule that fired mid-trial: they report it, then see the end
        _print_best(conn.store, coord.exp_key, space)
        if not any_ok:
            sys.exit(1)
    finally:
        stop_workers(procs, graceful=True)
        if mirror is not None:
            mirror.close(ended)


def _worker_command(args: list[str]) -> None:
    """What a forked local worker runs: `hyperdist worker ARGS` (server/prefork.py)."""
    main(args=args, prog_name="hyperdist")


def default_key(ref: str) -> str:
    """'dir/mysearch.py:objective' -> 'mysearch.objective', 'pkg.mod:objective' -> 'pkg.mod.objective':
    a key that tells searches apart even when every objective is called `objective`."""
    from hyperdist.objective.reference import is_file_target, split_reference

    target, attr = split_reference(ref)
    return f"{Path(target).stem if is_file_target(target) else target}.{attr}"


def _check_key(store: Any, exp_key: str, resume: bool) -> None:
    """--resume needs an experiment to continue; without it, a key in use is refused saying what to do."""
    from hyperdist.store import TrialState

    known = store.experiment_keys()
    if resume and exp_key not in known:
        raise HyperdistError(f"no experiment {exp_key!r} to resume (known: {', '.join(known) or 'none'}); "
                             "leave out --resume to start it")
    if not resume and exp_key in known:
        exp, counts = store.get_experiment(exp_key), store.counts(exp_key)
        raise ExperimentExists(
            f"experiment {exp_key!r} already exists ({exp.get('state')}, {counts[TrialState.DONE] + counts[TrialState.ERROR]} of "
            f"{exp.get('max_evals')} trials finished): continue it with --resume (a larger --max-evals runs more), "
            "or start a new one with --exp NEW_KEY")


@main.command()
@click.option("--max-evals", type=click.IntRange(min=1, max=COUNT_MAX), default=60, show_default=True,
              help="Total trials, history included.")
@click.option("--workers", type=click.IntRange(min=1, max=COUNT_MAX), default=4, show_default=True,
              help="Local worker processes to start.")
@click.option("--resume", is_flag=True, help="Continue the demo experiment.")
@click.option("--exp", "exp_key", default="demo-digits", show_default=True, metavar="KEY",
              help="Experiment key: another one starts a new demo beside the first.")
@click.option("--seed", type=click.IntRange(min=0, max=SEED_MAX), default=0, show_default=True,
              help="Seed of the suggestions.")
@MONGO
@DATA_DIR
@click.pass_context
def demo(ctx: click.Context, max_evals: int, workers: int, resume: bool, exp_key: str, seed: int, mongo: str | None,
         data_dir: Path) -> None:
    """Tune a scikit-learn classifier on the digits data set (needs `pip install 'hyperdist[demo]'`)."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise HyperdistError("the demo needs scikit-learn: pip install 'hyperdist[demo]'") from None
    ctx.invoke(search, objective="hyperdist.demo:objective", space_ref="hyperdist.demo:space", max_evals=max_evals,
               mongo=mongo, db=None, data_dir=data_dir, exp_key=exp_key, workers=workers, gpus=None, queue=None,
               resume=resume, allow_space_change=False, allow_objective_change=False, seed=seed, algo="tpe", timeout=None,
               loss_threshold=None, isolate=False, trial_timeout=None, pruner="none", log_to=None, no_progress=False)


def _print_best(store: Any, exp_key: str, space: Any) -> None:
    from hyperdist.views.status import best_json, best_trial

    best = best_trial(store, exp_key)
    if best is None:
        echo("no trial finished with status ok")
        return
    echo(best_json(best, space))
