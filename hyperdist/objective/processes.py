"""Processes an objective starts, and making sure they end with the trial or the worker.

An objective may start programs (`subprocess.run`), fork, or start pools. Left alone, those outlive
the trial and the worker (adopted by init), and a fork of a worker keeps the search's command line.
A trial child (--subprocess) is the leader of its own process group, so one `killpg` ends it with
everything it started; a worker in process adopts its objective's orphans (a Linux child
subreaper), so on exit it can end every process its objective left behind. Linux only; elsewhere
these are no-ops. A process that starts its own session (a daemon) or a worker killed with SIGKILL
escape this (docs/reliability.md).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

_LINUX = sys.platform.startswith("linux")
# loaded here, not in a forked child before exec, where another thread may hold the loader's lock
_LIBC = ctypes.CDLL(None, use_errno=True) if _LINUX else None
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


def _prctl(option: int, value: int) -> None:
    if _LIBC is not None:
        _LIBC.prctl(option, value, 0, 0, 0)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """In a child before exec: ask Linux for `signum` when the parent dies (PR_SET_PDEATHSIG)."""
    _prctl(_PR_SET_PDEATHSIG, signum)


def trial_group_child() -> None:
    """preexec_fn of a trial child: its own process group (so `kill_group` reaches what the
    objective starts) and SIGKILL when the worker dies, which an objective cannot ignore."""
    os.setpgid(0, 0)
    die_with_parent(signal.SIGKILL)


def kill_group(pgid: int) -> None:
    """SIGKILL a process group (a trial child and whatever it started); gone already is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def adopt_orphans() -> None:
    """Make this process the reaper of its descendants whose parent exits (PR_SET_CHILD_SUBREAPER),
    so `children()` still finds what an objective's forks and their programs left running."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def children() -> set[int]:
    """This process's live children (every thread's), from /proc; empty where there is no /proc."""
    found: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as fh:
                found.update(int(pid) for pid in fh.read().split())
        except (OSError, ValueError):
            continue
    return found


def end_children(keep: set[int], rounds: int = 20) -> int:
    """SIGKILL and reap every child not in `keep` (the worker's own) that does not lead a session of
    its own (a local server's keeper, which the worker may have started again while it ran, and
    daemons), then whatever of theirs was adopted in turn; returns how many were ended."""
    ended = 0
    for _ in range(rounds):
        left = {pid for pid in children() - keep if not _leads_a_session(pid)}
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                ended += 1
            except (ProcessLookupError, ChildProcessError):
                pass
    return ended


def _leads_a_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except (ProcessLookupError, PermissionError):
        return False
