"""What every peer of peers.py shares: its virtualenv's Python, the environment, ports, the
timing rule and stopping processes. Standard library only: this runs in any virtualenv."""
from __future__ import annotations

import json
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
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completion_rate(times: list[float]) -> tuple[float, float]:
    """(seconds from first to last completion, trials per second after the first)."""
    times = sorted(times)
    if len(times) < 2:
        return 0.0, 0.0
    span = times[-1] - times[0]
    return span, (len(times) - 1) / span if span > 0 else float("inf")


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
