"""Workers forked by `hyperdist search` before it connects (server/prefork.py): real OS processes,
driven from a fresh interpreter (a fork is made where no other thread runs)."""
from __future__ import annotations

import subprocess
import sys

_DRIVER = """
import os, sys, time
from pathlib import Path
from hyperdist.server.prefork import Forked, prefork

def run(args):
    print("args", args, "env", os.environ.get("HD_TEST"), "ppid is the driver", os.getppid() == int(os.environ["DRIVER"]),
          "own session", os.getsid(0) == os.getpid(), flush=True)
    sys.exit(int(args[0]))

os.environ["DRIVER"] = str(os.getpid())
forks = prefork(3, run)
assert len(forks) == 3
log = Path(sys.argv[1])
done = forks.start(["3", "--x"], dict(os.environ, HD_TEST="seen"), log)
print("code", done.wait(60), flush=True)
waiting = forks.start(["0"], dict(os.environ, HD_TEST="x"), None)
print("code", waiting.wait(60), flush=True)
unused = [pid for pid, _ in forks._waiting]
forks.close()
print("unused gone", all(not Path(f"/proc/{pid}").exists() for pid in unused), flush=True)
"""


def test_a_forked_worker_runs_its_command_with_its_environment_and_log(tmp_path):
    log = tmp_path / "worker-0.log"
    done = subprocess.run([sys.executable, "-c", _DRIVER, str(log)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["code 3", "code 0", "unused gone True"]
    assert log.read_text() == "args ['3', '--x'] env seen ppid is the driver True own session True\n"


_DRAWS = """
import random, sys
import numpy as np
from hyperdist.server.prefork import prefork

def run(args):
    print(np.random.randint(1 << 30), random.getrandbits(30), flush=True)
    sys.exit(0)

np.random.random(); random.random()  # the parent's generators are in use before the fork
forks = prefork(2, run)
for _ in range(2):
    forks.start([], {}, sys.argv[1]).wait(60)
"""


def test_forked_workers_draw_different_random_numbers(tmp_path):
    """numpy's global generator is copied by a fork: each forked worker reseeds it, as a fresh
    interpreter would (an objective adding noise must not repeat its siblings' draws)."""
    log = tmp_path / "draws.log"
    done = subprocess.run([sys.executable, "-c", _DRAWS, str(log)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = [line.split() for line in log.read_text().splitlines()]
    assert first[0] != second[0] and first[1] != second[1]


def test_no_fork_where_a_thread_runs():
    code = ("import threading, time; from hyperdist.server.prefork import prefork\n"
            "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
            "print(prefork(2, print))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "None", done.stderr
