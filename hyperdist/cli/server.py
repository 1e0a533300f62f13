"""`hyperdist server start|stop|status`: the embedded local server, for workers started by hand."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .app import DATA_DIR, main

@main.group()
def server() -> None:
    """Run the local MongoDB-wire server for workers started by hand."""


@server.command("start")
@DATA_DIR
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="Default: a free port.")
def server_start(data_dir: Path, host: str, port: int) -> None:
    from ..server import start_server

    s = start_server(data_dir, host=host, port=port)
    click.echo(f"{s.kind} running (pid {s.pid}) at {s.url}; data in {s.data_dir}")


@server.command("stop")
@DATA_DIR
def server_stop(data_dir: Path) -> None:
    from ..server import stop_server

    click.echo("stopped" if stop_server(data_dir) else f"no server running in {data_dir}")


@server.command("status")
@DATA_DIR
def server_status_cmd(data_dir: Path) -> None:
    from ..server import server_status

    s = server_status(data_dir)
    click.echo(f"{s.kind} running (pid {s.pid}) at {s.url}" if s else f"no server running in {data_dir}")
    sys.exit(0 if s else 1)
