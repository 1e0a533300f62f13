"""The `hyperdist` command group, its shared options, and how a command opens the store."""
from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ..errors import HyperdistError, redact

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


def _connection(mongo: str | None, data_dir: Path, db: str | None, start: bool = True, read_only: bool = False):
    from ..launcher import connect

    return connect(mongo, data_dir, start=start, db=db, read_only=read_only)


def _with_store(fn: Callable) -> Callable:
    """Open the store for a read-only command, and stop an embedded server this command started."""
    @MONGO
    @DB
    @DATA_DIR
    @functools.wraps(fn)
    def wrapper(mongo: str | None, db: str | None, data_dir: Path, **kwargs: Any) -> Any:
        conn = _connection(mongo, data_dir, db, read_only=True)
        try:
            return fn(conn.store, **kwargs)
        finally:
            conn.close()
    return wrapper
