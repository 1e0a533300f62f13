"""`hyperdist stop EXP`: ask the search running an experiment to stop, from any machine."""
from __future__ import annotations

import getpass
import os
import shlex
import socket
from pathlib import Path

import click

from hyperdist.errors import SearchNotRunning
from hyperdist.cli.app import DATA_DIR, DB, MONGO, _connection, echo, main


@main.command()
@click.argument("exp_key")
@MONGO
@DB
@DATA_DIR
def stop(exp_key: str, mongo: str | None, db: str | None, data_dir: Path) -> None:
    """Ask the search running EXP_KEY to stop: it hands its running trials back, stops its local
    workers, marks the experiment stopped and exits saying who asked. `--resume` continues it."""
    from hyperdist.server.embedded import server_status

    if not mongo and server_status(data_dir) is None:  # a local search keeps its server up while it runs
        raise SearchNotRunning(f"no search is running on the local server in {str(data_dir)!r} (it is not "
                               "running); for a search on another database pass --mongo URL")
    conn = _connection(mongo, data_dir, db, start=False)
    try:
        conn.store.request_stop(exp_key, f"{_user()}@{socket.gethostname()} (pid {os.getpid()})")
    finally:
        conn.close()
    echo(f"asked the search on {exp_key!r} to stop; it stops within a few seconds "
               f"(`hyperdist status {shlex.quote(exp_key)}` shows its state)")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"
