"""A command's watch on the local server it uses: when the server dies under a running search, the
search learns it within seconds instead of retrying a dead port for its whole outage timeout.

Its keeper (keeper.py) starts a server that dies again on the same port while a command uses it;
this watch tells the person so in one line. When the keeper itself is gone (killed, so its server
got SIGTERM), the watch starts a new keeper on the same port. When nothing can bring the server
back (stopped on purpose with `hyperdist server stop --force`, or it does not start), it says so
and makes the store give up (Store.give_up), so the search ends with that line.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from hyperdist.errors import HyperdistError
from hyperdist.server.embedded import LocalServer, _alive, _locked, read_record, server_status, start_server
from hyperdist.server.use import idle_seconds

POLL = 1.0          # seconds between looks
KEEPER_GRACE = 15.0  # seconds a live keeper gets to start its server again before this does


class ServerWatch:
    """A daemon thread watching `server` for one command; `say` hears what happened, `store` is
    told to give up when the server cannot come back."""

    def __init__(self, server: LocalServer, store: Any, say: Callable[[str], None]) -> None:
        self.server, self.store, self.say = server, store, say
        self._down_since: float | None = None
        self._keeper = (read_record(server.data_dir) or {}).get("keeper")  # to tell its death from the server's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hyperdist-server-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                if not self._look():
                    return
            except HyperdistError as exc:  # a broken record or a failed start: the server is gone
                self._gone(f"the local server in {self.server.data_dir} stopped and could not be started "
                           f"again: {exc}")
                return

    def _look(self) -> bool:
        """One look; False once the server is gone for good."""
        live = server_status(self.server.data_dir)
        if live is not None and live.pid == self.server.pid:
            self._down_since = None
            return True
        with _locked(self.server.data_dir):  # a start or a stop in progress finishes first
            live = server_status(self.server.data_dir)
            found = read_record(self.server.data_dir)
        if live is not None:
            why = (found or {}).get("restarted")
            if why is None and self._keeper and (found or {}).get("keeper") != self._keeper:
                why = f"stopped (its keeper, pid {self._keeper}, is gone)"
            return self._back(live, why or "stopped")
        if found is None:
            self._gone(f"the local server in {self.server.data_dir} was stopped (`hyperdist server stop "
                       "--force`) while this command used it")
            return False
        now = time.monotonic()
        self._down_since = self._down_since or now
        keeper = found.get("keeper")
        if keeper is None:  # `hyperdist server start`'s server: its options (--auth, --host) are not ours to guess
            port = self.server.url.rsplit(":", 1)[-1].split("/", 1)[0]
            self._gone(f"the local server in {self.server.data_dir} (pid {self.server.pid}) stopped; start it "
                       f"again with `hyperdist server start --port {port}` (and its other options)")
            return False
        if _alive(int(keeper)) and now - self._down_since < KEEPER_GRACE:
            return True  # its keeper is starting it again
        idle = self.server.idle if self.server.idle is not None else idle_seconds()
        again = start_server(self.server.data_dir, idle=idle)
        return self._back(again, f"stopped (its keeper, pid {keeper}, is gone)")

    def _back(self, live: LocalServer, why: str) -> bool:
        if live.url != self.server.url:
            self._gone(f"the local server in {self.server.data_dir} stopped and came back at another address; "
                       "this command cannot follow it")
            return False
        self.say(f"the local server {why}; restarted it")
        self.server, self._down_since, self._keeper = live, None, (read_record(live.data_dir) or {}).get("keeper")
        return True

    def _gone(self, reason: str) -> None:
        """The command's next store operation fails with `reason`, which is how the person hears it."""
        self.store.give_up(reason)


def holders(data_dir: Path) -> list[str]:
    """The command lines of the processes holding server.inuse (Linux: /proc/locks), for a person
    deciding whether to stop the server under them; [] where that cannot be read."""
    try:
        inode = os.stat(Path(data_dir) / "server.inuse").st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            try:
                argv = Path(f"/proc/{fields[4]}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            found.append(f"pid {fields[4]}: " + " ".join(a.decode(errors="replace") for a in argv if a))
    return sorted(set(found))
