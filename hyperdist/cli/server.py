"""`hyperdist server start|stop|status`: the embedded local server, for workers started by hand."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from hyperdist.errors import HyperdistError, redact
from hyperdist.cli.app import DATA_DIR, echo, main


@main.group()
def server() -> None:
    """The local MongoDB-wire server in --data-dir. Commands start one by themselves when they need
    it (it stops after HYPERDIST_SERVER_IDLE seconds without a command, default 300); `server start`
    keeps it up until `hyperdist server stop` (the one running, or a new one), e.g. for workers
    started by hand."""


@server.command("start")
@DATA_DIR
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback (e.g. 0.0.0.0: every interface) lets other "
                   "machines in, and needs --auth or --insecure.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=0, help="Port to listen on (default: a free one).")
@click.option("--auth", "auth_user", metavar="USER",
              help="Require a login: create (or update) USER with the password from HYPERDIST_SERVER_PASSWORD, "
                   "asked for when unset; workers then connect with mongodb://USER:PASSWORD@HOST:PORT/"
                   "?authSource=admin.")
@click.option("--insecure", is_flag=True,
              help="Allow a --host other than loopback without --auth: anyone reaching the port can read and "
                   "change every experiment.")
def server_start(data_dir: Path, host: str, port: int, auth_user: str | None, insecure: bool) -> None:
    """Start the local server and keep it up until `hyperdist server stop`. A server already
    running (one a search started stops when idle) is kept up from now on instead; with --host,
    --port or --auth, stop it first."""
    from hyperdist.server.embedded import LOOPBACK, check_exposure, server_status, start_server
    from hyperdist.server.use import keep_up

    warning = check_exposure(host, bool(auth_user), insecure)
    options = host != "127.0.0.1" or port != 0 or auth_user is not None
    running = server_status(data_dir) if options else keep_up(data_dir)
    if running is not None:
        where = f"{running.kind} already running (pid {running.pid}) at {redact(running.url)} (data in {running.data_dir})"
        if options:
            raise HyperdistError(f"{where}; run `hyperdist server stop` first to start it with --host, --port "
                                 "or --auth")
        echo(f"{where}; it stays up until `hyperdist server stop`")
        return
    if warning:
        echo(warning, err=True)
    credentials = None
    if auth_user:
        password = os.environ.get("HYPERDIST_SERVER_PASSWORD") or click.prompt(
            f"password for {auth_user}", hide_input=True, confirmation_prompt=True)
        credentials = (auth_user, password)
        _provision(data_dir, auth_user, password)
    s = start_server(data_dir, host=host, port=port, auth=bool(auth_user), credentials=credentials)
    echo(f"{s.kind} running (pid {s.pid}) at {redact(s.url)} (data in {s.data_dir})")
    if host not in LOOPBACK:
        port_used = s.url.split("@")[-1].split("//")[-1].split("/")[0].rsplit(":", 1)[-1]
        echo(f"other machines connect to this machine's name or address, port {port_used}", err=True)


def _provision(data_dir: Path, user: str, password: str) -> None:
    """Create the user on the server while it still listens on loopback only, without --auth."""
    from hyperdist.server.embedded import start_server, stop_server
    from hyperdist.store import Store

    plain = start_server(data_dir)
    try:
        store = Store(plain.url, db="admin")
        try:
            store.ensure_user(user, password)
        finally:
            store.close()
    finally:
        stop_server(data_dir)


@server.command("stop")
@DATA_DIR
@click.option("--force", is_flag=True,
              help="Stop it even while commands use it (a search then stops, saying its server is gone; "
                   "continue it with --resume).")
def server_stop(data_dir: Path, force: bool) -> None:
    """Stop the local server of --data-dir (whoever started it); its data stays. While a command
    uses it (a search, a worker) it is left running, naming them, unless --force."""
    from hyperdist.errors import HyperdistError
    from hyperdist.server.embedded import stop_server
    from hyperdist.server.use import in_use
    from hyperdist.server.watch import holders

    if not force and in_use(data_dir):
        users = holders(data_dir)
        named = "".join(f"\n  {redact(user)}" for user in users) if users else " (a running command)"
        raise HyperdistError(f"the local server in {data_dir} is in use by{named}\nleft running: stop those "
                             "first (Ctrl-C, `hyperdist stop EXP`), or add --force to stop it under them")
    echo("stopped" if stop_server(data_dir) else f"no server running in {data_dir}")


@server.command("status")
@DATA_DIR
def server_status_cmd(data_dir: Path) -> None:
    """Whether a local server runs in --data-dir, and where; exits with 1 when none does."""
    from hyperdist.server.embedded import server_status

    s = server_status(data_dir)
    if s is None:
        echo(f"no server running in {data_dir}")
        sys.exit(1)
    lifetime = f"stops after {s.idle:g} s without a command" if s.idle is not None else "until `hyperdist server stop`"
    echo(f"{s.kind} running (pid {s.pid}) at {redact(s.url)}; {lifetime}")
