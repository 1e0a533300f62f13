"""`hyperdist dashboard`: the live web view of experiments (hyperdist/views/dashboard.py)."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import quote

import click

from hyperdist.errors import HyperdistError
from hyperdist.cli.app import DATA_DIR, DB, MONGO, _connection, echo, exp_key_option, main


@main.command()
@exp_key_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The dashboard has no login: keep it on loopback, or put it behind one.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8050, show_default=True,
              help="Port to listen on (0: a free one).")
@click.option("--interval", type=click.FloatRange(min=0.5), default=2.0, show_default=True,
              help="Seconds between the pages' refreshes.")
@MONGO
@DB
@DATA_DIR
def dashboard(exp_key: str | None, host: str, port: int, interval: float, mongo: str | None, db: str | None,
              data_dir: Path) -> None:
    """Serve a live, read-only dashboard of the experiments (needs `pip install 'hyperdist[dashboard]'`).

    Opens on the experiments list, or on EXP's page when given. New trials appear as they finish.
    """
    from hyperdist.views.dashboard import LOOPBACK, create_app, serve

    conns = [_connection(mongo, data_dir, db, read_only=True)]

    def reopen():
        """The local server stopped (`hyperdist search` stops the one it started): start it again."""
        conns.append(_connection(None, data_dir, db, read_only=True))
        return conns[-1].store

    try:
        store = conns[0].store
        if exp_key is not None:
            store.get_experiment(exp_key)  # an unknown key fails here, naming the known ones
        app = create_app(store, poll_seconds=interval, host=host, reopen=None if mongo else reopen)
        try:
            sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise HyperdistError(f"cannot listen on {host}:{port}: {reason}; choose another --port "
                                 "(0 picks a free one)") from None
        shown = f"[{host}]" if ":" in host else host
        path = f"/experiments/{quote(exp_key, safe='')}" if exp_key else "/"
        echo(f"dashboard of {store.url_redacted} (database {store.db_name}) at "
                   f"http://{shown}:{sock.getsockname()[1]}{path} - read-only; Ctrl-C stops it", err=True)
        if host not in LOOPBACK:
            echo(f"warning: listening on {host}, not loopback: anyone who can reach this port can read every "
                       "experiment in the database (there is no login)", err=True)
        with sock:
            serve(app, sock)
    finally:
        for conn in conns:
            conn.close()
