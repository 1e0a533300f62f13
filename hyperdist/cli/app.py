"""The `hyperdist` command group, its shared options, and how a command opens the store."""
from __future__ import annotations

import functools
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click

from hyperdist.errors import HyperdistError, printable, redact
from hyperdist.objective.threads import exit_after_threads

MONGO = click.option("--mongo", envvar="HYPERDIST_MONGO_URL", metavar="URL",
                     help="MongoDB URL (mongodb://user:pass@host:port/db?tls=true...). Default: the embedded "
                          "local server in --data-dir. [env HYPERDIST_MONGO_URL]")
DB = click.option("--db", envvar="HYPERDIST_DB", default=None, metavar="NAME",
                  help="Database name (default: from the URL path, else 'hyperdist'). [env HYPERDIST_DB]")
COUNT_MAX = 2**31 - 1  # a count an option may give: far above any search, and storable as a database integer
SEED_MAX = 2**63 - 1   # the largest integer a MongoDB document holds

DATA_DIR = click.option("--data-dir", envvar="HYPERDIST_DATA_DIR", default=".hyperdist", show_default=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Where the embedded server keeps its data. [env HYPERDIST_DATA_DIR]")


def echo(message: Any = "", err: bool = False, nl: bool = True) -> None:
    """click.echo for anything a command prints: stored text may carry terminal controls."""
    click.echo(printable(str(message)), err=err, nl=nl)


class _Group(click.Group):
    """Prints user errors as one redacted line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HyperdistError as exc:
            echo(f"error: {redact(str(exc))}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="hyperdist")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Distributed hyperparameter search with TPE over MongoDB."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("%(asctime)s %(name)s[%(process)d] %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("pymongo").setLevel(logging.WARNING)


class _SafeFormatter(logging.Formatter):
    """Every line a command logs (a worker's and a search's logs included) as `echo` prints: keys,
    labels and objective errors come from the database, so they may carry terminal controls or a
    password; this is the one place that makes every record safe, whoever wrote its arguments."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(redact(super().format(record)))


def run() -> None:
    """The `hyperdist` program: the command group, then an exit that a thread the objective left
    running cannot hold up (objective/threads.py). Tests invoke `main` itself."""
    try:
        main(prog_name="hyperdist")
    except SystemExit as exc:
        code: object = exc.code
    else:
        code = 0
    exit_after_threads(code)


def _connection(mongo: str | None, data_dir: Path, db: str | None, start: bool = True, read_only: bool = False,
                watch: bool = False):
    from hyperdist.server.launcher import connect

    return connect(mongo, data_dir, start=start, db=db, read_only=read_only,
                   announce=lambda line: echo(line, err=True), watch=watch)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _with_store(fn: Callable) -> Callable:
    """Open the store for a read-only command. SIGTERM and SIGHUP end it like Ctrl-C does, through
    its `finally`, so it lets go of the embedded server (which then stops after its idle limit)."""
    @MONGO
    @DB
    @DATA_DIR
    @functools.wraps(fn)
    def wrapper(mongo: str | None, db: str | None, data_dir: Path, **kwargs: Any) -> Any:
        previous = {sig: signal.signal(sig, _exit_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            conn = _connection(mongo, data_dir, db, read_only=True)
            try:
                return fn(conn.store, **kwargs)
            finally:
                conn.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return wrapper


def exp_key_option(fn: Callable) -> Callable:
    """The experiment key, as the first argument (`hyperdist status run1`) or as `--exp run1` (as
    `search` and `worker` take it): every command that takes a key accepts both. The command gets
    `exp_key` (None when neither was given) and, when it also takes an argument after the key
    (`show EXP TID`), the remaining argument in `rest`."""
    @click.argument("key_arg", metavar="[EXP]", required=False)
    @click.option("--exp", "exp_opt", metavar="KEY", help="The experiment key (instead of the EXP argument).")
    @functools.wraps(fn)
    def wrapper(key_arg: str | None, exp_opt: str | None, **kwargs: Any) -> Any:
        if key_arg is not None and exp_opt is not None and key_arg != exp_opt:
            if "rest" in kwargs and kwargs["rest"] is None:
                key_arg, kwargs["rest"] = None, key_arg  # `show --exp run1 7`: the argument is the 7
            else:
                raise click.UsageError(f"two experiment keys: {key_arg!r} and --exp {exp_opt!r}; give one")
        return fn(exp_key=exp_opt or key_arg, **kwargs)
    return wrapper


def required_key(exp_key: str | None) -> str:
    if not exp_key:
        raise click.UsageError("which experiment? give its key: `hyperdist COMMAND KEY` or `--exp KEY` "
                               "(`hyperdist list` shows them)")
    return exp_key
