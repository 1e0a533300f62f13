"""What every peer of peers.py shares: its virtualenv's Python, the environment, ports, the
clock rule and stopping processes. Standard library only: this runs in any virtualenv."""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers.py"  # the CLI whose hidden sub-commands run inside the peers' virtualenvs


def venv_python(venv: str, what: str) -> str:
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"peers.py: no virtualenv for {what} at {venv} ({python} missing). "
                         f"Create it with: bash {HERE / 'setup_peers.sh'}  (or point "
                         f"{'HYPEROPT_MONGO_VENV' if 'yperopt' in what else 'OPTUNA_PG_VENV'} at one)")
    return str(python)


def peer_env() -> dict:
    """The peers' processes see benchmarks/ on their path and nothing else from ours: a PYTHONPATH
    that points at a copy of hyperdist (a frozen benchmark run) must not leak into their virtualenvs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clocks(t_launch: float, times: list[float]) -> dict:
    """The clock rule of issue 21, the same for every system, from the completion time of every ok
    trial as its storage records it (epoch seconds) and the moment the workers were launched:

    - end to end: trials / (last completion - launch): interpreters, imports, connecting and the
      first suggestions included;
    - steady state: the trials finished between the 20% and the 80% marks over the time between them;
    - `startup_s`: launch to the first completion; `first_to_last_per_s`: (trials - 1) / (last -
      first), the clock of the earlier reports (start-up excluded), kept only to show the difference.
    """
    times = sorted(times)
    n = len(times)
    out: dict = {"done": n}
    if n < 2:
        return out
    i20, i80 = math.ceil(0.2 * n) - 1, math.ceil(0.8 * n) - 1
    span = times[i80] - times[i20]
    out.update(e2e_s=times[-1] - t_launch, trials_per_s=n / (times[-1] - t_launch), startup_s=times[0] - t_launch,
               steady_trials_per_s=(i80 - i20) / span if span > 0 else float("inf"),
               first_to_last_per_s=(n - 1) / (times[-1] - times[0]) if times[-1] > times[0] else float("inf"))
    return out


def stop_all(procs: list[subprocess.Popen], timeout: float = 10) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON result in output:\n{text[-3000:]}")
