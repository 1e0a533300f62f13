"""Objectives the distributed tests run in real worker processes (imported by reference)."""
import json
import os
import time

from hyperdist import hp

space = {
    "x": hp.uniform("x", -5, 5),
    "branch": hp.choice("branch", [{"k": "a"}, {"k": "b", "y": hp.quniform("y", 0, 10, 1)}]),
}


def _log(cfg: dict) -> None:
    path = os.environ.get("HYPERDIST_TEST_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(cfg, sort_keys=True) + "\n")


def quadratic(cfg: dict) -> float:
    """Records every evaluation, so tests can prove no trial ran twice."""
    _log(cfg)
    delay = float(os.environ.get("HYPERDIST_TEST_DELAY", "0"))
    if delay:
        time.sleep(delay)
    extra = 0.0 if cfg["branch"]["k"] == "a" else (cfg["branch"]["y"] - 3) ** 2 / 10
    return (cfg["x"] - 1.0) ** 2 + extra


def hang(cfg: dict) -> float:
    """Runs far past any per-trial timeout."""
    time.sleep(60)
    return 0.0


def exits(cfg: dict) -> float:
    """Kills its own interpreter: by exit code for x < 0, by SIGKILL otherwise."""
    import signal

    if cfg["x"] < 0:
        os._exit(3)
    os.kill(os.getpid(), signal.SIGKILL)
    return 0.0


def raises(cfg: dict) -> float:
    raise RuntimeError("always broken")


def bad_values(cfg: dict):
    """NaN, inf, None, a string, a dict without loss, depending on x."""
    options = [float("nan"), float("inf"), None, "0.5", {"status": "ok"}, {"loss": 1.0, "model": object()}]
    return options[int((cfg["x"] + 5) / 10 * len(options)) % len(options)]


not_callable = 42


def curve(cfg: dict, ctx) -> float:
    """A learning curve: reports each 'epoch' and stops when the pruner says so."""
    _log(cfg)
    final = (cfg["x"] - 1.0) ** 2
    for step in range(1, 10):
        ctx.report(step, final + 3.0 / step)
        if ctx.should_stop():
            ctx.prune()
    return final


# A conditional space whose losses span decades, for the views: some trials fail, some are pruned.
views_space = {
    "lr": hp.loguniform("lr", -9, 0),
    "model": hp.choice("model", [
        {"kind": "linear", "l2": hp.loguniform("l2", -8, 1)},
        {"kind": "tree", "depth": hp.quniform("depth", 1, 12, 1), "split": hp.choice("split", ["gini", "entropy"])},
    ]),
    "batch": hp.choice("batch", [16, 64, 256]),
}


def views(cfg: dict, ctx) -> float:
    """Fails when lr > 0.4 (about one trial in ten), reports 8 steps, prunes when told."""
    import math

    delay = float(os.environ.get("HYPERDIST_TEST_DELAY", "0"))
    if cfg["lr"] > 0.4:
        raise ValueError(f"lr={cfg['lr']:.3g} diverged")
    m = cfg["model"]
    final = 0.01 + (math.log(cfg["lr"]) + 4.5) ** 2 / 2 + (0.3 * math.log10(m["l2"] * 10) ** 2 if m["kind"] == "linear"
                                                         else abs(m["depth"] - 6) / 4 + (m["split"] == "gini") * 0.2)
    final *= 1.0 + 0.1 * [16, 64, 256].index(cfg["batch"])
    for step in range(1, 9):
        if delay:
            time.sleep(delay / 8)
        ctx.report(step, final + 2.0 / step)
        if ctx.should_stop():
            ctx.prune()
    return final


def sees_device(cfg: dict) -> dict:
    """Returns the CUDA_VISIBLE_DEVICES its worker process was given, beside a loss."""
    time.sleep(float(os.environ.get("HYPERDIST_TEST_DELAY", "0")))
    return {"loss": (cfg["x"] - 1.0) ** 2, "status": "ok", "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}


def tracked(cfg: dict, ctx) -> float:
    """Reports three steps; fails for x > 4 (the error reaches the tracker)."""
    for step in range(1, 4):
        ctx.report(step, (cfg["x"] - 1.0) ** 2 + 1.0 / step)
    if cfg["x"] > 4:
        raise ValueError(f"x={cfg['x']:.3f} is too large")
    return (cfg["x"] - 1.0) ** 2


# Hyperopt-style arithmetic and scope helpers on hp nodes: they travel to workers as JSON data.
from hyperdist.pyll import scope  # noqa: E402

expression_space = {
    "lr": scope.exp(hp.uniform("log_lr", -5, 0)),
    "units": scope.int(hp.quniform("units", 8, 64, 8)) * 2,
    "shifted": 1 + abs(hp.normal("z", 0, 1)),
}


def expression_loss(cfg: dict) -> float:
    """Records the configuration it received, so the test can check the expressions were applied."""
    _log(cfg)
    return cfg["lr"] * cfg["units"] / cfg["shifted"]


def constant(cfg: dict) -> float:
    """Never improves: a search with no_progress_loss stops early."""
    return 1.0


def chatty(cfg: dict) -> float:
    """Prints 200 000 bytes a trial (Python and fd 2 directly, as C code does), then a last line."""
    for i in range(1000):
        print(f"step {i:04d} " + "." * 189)
    os.write(2, b"from fd 2\n")
    print(f"last line x={cfg['x']:.6f}", flush=True)
    return cfg["x"] ** 2


def huge(cfg: dict) -> dict:
    """A result with a 20 MiB extra: more than a trial document holds, so it is stored as an ERROR."""
    return {"loss": cfg["x"] ** 2, "status": "ok", "blob": "a" * (20 * 1024 * 1024)}


_ALLOC: list[int] = []  # bytes each call of alloc_raise takes, fixed at its first call in a process


def alloc_raise(cfg: dict) -> float:
    """Takes ~55% of the address space left under the worker's RLIMIT_AS, then fails for x < 0 and
    succeeds otherwise: a second call fits only if the first call's memory was freed."""
    import resource

    if not _ALLOC:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        with open("/proc/self/status") as fh:
            used = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        _ALLOC.append(int((limit - used) * 0.55))
    block = bytearray(_ALLOC[0])
    if cfg["x"] < 0:
        raise ValueError(f"failed after taking {len(block)} bytes")
    return float(len(block) > 0)


def starts_processes(cfg: dict) -> float:
    """Leaves a `sleep 300`, and a fork of itself sleeping 300 s, running; their pids go to
    HYPERDIST_TEST_LOG, one line each."""
    import subprocess
    import sys

    sleeper = subprocess.Popen(["sleep", "300"])
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        time.sleep(300)
        os._exit(0)
    with open(os.environ["HYPERDIST_TEST_LOG"], "a") as fh:
        fh.write(f"{sleeper.pid}\n{pid}\n")
    return 0.0


def runs_a_program(cfg: dict) -> float:
    """Runs `sleep 301` and waits for it (past any test's trial timeout); its pid and this
    process's go to HYPERDIST_TEST_LOG."""
    import subprocess

    proc = subprocess.Popen(["sleep", "301"])
    with open(os.environ["HYPERDIST_TEST_LOG"], "a") as fh:
        fh.write(f"{proc.pid}\n{os.getpid()}\n")
    proc.wait()
    return 0.0


def asserts(cfg: dict) -> float:
    assert cfg["x"] > 100
    return 0.0


def reports_for_a_minute(cfg: dict, ctx) -> float:
    """Reports a step every 0.1 s for 60 s, stopping when `ctx.should_stop()` says so."""
    for step in range(600):
        ctx.report(step, (cfg["x"] - 1.0) ** 2 + 1.0 / (step + 1))
        if ctx.should_stop():
            ctx.prune()
        time.sleep(0.1)
    return (cfg["x"] - 1.0) ** 2
