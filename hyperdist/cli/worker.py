"""`hyperdist worker`: claim, evaluate and report trials, on any machine."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hyperdist.errors import HyperdistError
from hyperdist.cli.app import COUNT_MAX, DATA_DIR, DB, MONGO, _connection, exp_key_option, main


class _AllowEntry(click.ParamType):
    """An --allow value; HYPERDIST_ALLOW is split on os.pathsep (by AllowList), never on white space."""

    name = "entry"

    def split_envvar_value(self, rv: str) -> list[str]:
        return [rv] if rv else []


class _Slot(click.ParamType):
    """A --slot value I/K: integers, 0 <= I < K."""

    name = "slot"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        i, sep, k = str(value).partition("/")
        if sep and i.strip().isdigit() and k.strip().isdigit() and int(i) < int(k):
            return int(i), int(k)
        self.fail(f"{value!r} is not I/K with 0 <= I < K (e.g. 0/4 for the first of 4 workers)", param, ctx)


@main.command()
@MONGO
@DB
@DATA_DIR
@exp_key_option
@click.option("--allow", multiple=True, envvar="HYPERDIST_ALLOW", metavar="ENTRY", type=_AllowEntry(),
              help="What this worker may run: a module or package (public functions defined in it), a .py file "
                   "or directory (public functions defined in those files), or 'module:function' / "
                   "'file.py:function' (exactly that function). Repeat it, or separate entries with "
                   f"'{os.pathsep}'. Relative paths are taken from the working directory. [env HYPERDIST_ALLOW]")
@click.option("--path", "path", type=click.Path(file_okay=False, exists=True), metavar="DIR",
              help="Where relative objective files (as the search stored them) and modules are looked up. "
                   "[default: the working directory]")
@click.option("--subprocess", "isolate", is_flag=True, help="Evaluate each trial in a fresh Python process.")
@click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per trial (at most 30 days). [default: the search's --trial-timeout, stored with the "
                   "experiment; none if it gave none]")
@click.option("--lease", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds a trial stays ours without a heartbeat.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Exit after this many seconds without a trial.")
@click.option("--drain", is_flag=True, help="On SIGTERM/SIGINT finish the current trial instead of handing it back.")
@click.option("--max-consecutive-failures", type=click.IntRange(min=1, max=COUNT_MAX), default=10, show_default=True,
              help="Exit after this many trials in a row failed (an objective that cannot work here).")
@click.option("--max-trials", type=click.IntRange(min=1, max=COUNT_MAX), help="Exit after this many trials.")
@click.option("--prefetch", type=click.IntRange(min=1, max=COUNT_MAX), default=8, show_default=True,
              help="Most trials claimed at once; trials of at most 60 ms are claimed as many as fit in 120 ms.")
@click.option("--slot", type=_Slot(), metavar="I/K",
              help="This is worker I of K started together (I from 0): it claims first the trials whose id is "
                   "I modulo K, and another's short trial only after seeing it wait 0.25 s, so the K workers "
                   "seldom race for the same trial. `hyperdist search --workers K` numbers its own workers "
                   "this way.")
@click.option("--gpus", metavar="all|0,1,3",
              help="Start one worker process per GPU, each seeing only its device (CUDA_VISIBLE_DEVICES); 'all': "
                   "the devices in CUDA_VISIBLE_DEVICES, else those `nvidia-smi -L` lists.")
def worker(mongo: str | None, db: str | None, data_dir: Path, exp_key: str | None, allow: tuple[str, ...],
           path: str | None, isolate: bool, trial_timeout: float | None, lease: float, idle_timeout: float, drain: bool,
           max_consecutive_failures: int, max_trials: int | None, prefetch: int, slot: tuple[int, int] | None,
           gpus: str | None) -> None:
    """Claim trials, evaluate their objective, report results; stateless, run as many as you like.
    Only trials of experiment EXP (or --exp) when given, else of any experiment."""
    from hyperdist.distributed.runnable import checked_timeout
    from hyperdist.distributed.worker import Worker, WorkerConfig, log
    from hyperdist.objective.processes import adopt_orphans, children, end_children
    from hyperdist.objective.reference import AllowList

    checked_timeout(trial_timeout, "--trial-timeout")
    entries = AllowList.from_options(allow).entries  # a malformed entry fails here, before connecting
    if not entries:
        raise HyperdistError("a worker needs --allow ENTRY: it only runs objectives its operator allowed")
    config = WorkerConfig(allow=entries, path=path, exp_key=exp_key, isolate=isolate,
                          trial_timeout=trial_timeout, lease_seconds=lease, idle_timeout=idle_timeout,
                          drain=drain, max_consecutive_failures=max_consecutive_failures, max_trials=max_trials,
                          prefetch=prefetch, slot=slot)
    devices = None
    if gpus is not None:
        from hyperdist.distributed.gpus import parse_gpus

        devices = parse_gpus(gpus)  # a bad device list fails before connecting
    conn = _connection(mongo, data_dir, db, watch=True)
    if devices is not None:
        _supervise(devices, conn.url, conn.store.db_name, exp_key)
        conn.close()
        return
    own = children()  # e.g. the keeper of a local server this command started: not the objective's
    if not isolate:  # a trial child (--subprocess) is a process group that ends with its trial
        adopt_orphans()
    try:
        w = Worker(conn.store, config)
        w.install_signal_handlers()
        stats = w.run()
    finally:
        conn.close()
        ended = end_children(own)  # whatever the objective started and left running ends with the worker
        if ended:
            log.info("ended %d process(es) the objective had started and left running", ended)
    sys.exit(stats.exit_code)


def _supervise(devices: list[str], url: str, db: str, exp_key: str | None) -> None:
    """One worker process per device, with this command's options; the URL travels in the
    environment, never on a command line."""
    from hyperdist.distributed.gpus import forwarded_args, supervise

    ctx = click.get_current_context()
    verbose = ["-v"] if ctx.parent is not None and ctx.parent.params.get("verbose") else []
    command = [*verbose, "worker", *forwarded_args(ctx, {"gpus", "mongo", "db", "data_dir", "exp_opt"}),
               *(["--exp", exp_key] if exp_key else [])]
    sys.exit(supervise(command, devices, dict(os.environ, HYPERDIST_MONGO_URL=url, HYPERDIST_DB=db)))
