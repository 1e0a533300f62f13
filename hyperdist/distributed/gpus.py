"""One worker process per GPU: which devices a machine has, and a supervisor that starts a worker
on each with CUDA_VISIBLE_DEVICES set to just that device.

PyTorch, TensorFlow, JAX, XGBoost and LightGBM's CUDA build all honour CUDA_VISIBLE_DEVICES: a
process that sees one device puts all its work there, so two trials never share a GPU and an
objective needs no device logic of its own. Each trial records the device its worker saw.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from typing import Any, Mapping

import click

from hyperdist.errors import HyperdistError

log = logging.getLogger("hyperdist.gpus")
# a device index, or a GPU/MIG UUID as nvidia-smi -L prints it
_DEVICE = re.compile(r"\d+|(GPU|MIG)-[0-9A-Za-z/-]+")
_EXAMPLE = "expected 'all' or device indices or UUIDs separated by commas, e.g. 0,1,3"


def parse_gpus(spec: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The devices `--gpus` names: 'all' (found on this machine) or an explicit list."""
    text = spec.strip()
    if text.lower() == "all":
        return detect_gpus(os.environ if env is None else env)
    devices = [d.strip() for d in text.split(",")]
    bad = [d for d in devices if not _DEVICE.fullmatch(d)]
    if not text or bad:
        raise HyperdistError(f"--gpus {spec!r}: {bad[0]!r} is not a device; {_EXAMPLE}" if bad and text
                             else f"--gpus {spec!r}: {_EXAMPLE}")
    repeated = sorted({d for d in devices if devices.count(d) > 1})
    if repeated:
        raise HyperdistError(f"--gpus {spec!r}: device {repeated[0]} is named twice; one worker per device")
    return devices


def detect_gpus(env: Mapping[str, str]) -> list[str]:
    """CUDA_VISIBLE_DEVICES when set (a scheduler such as Slurm chose them), else `nvidia-smi -L`."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        devices: list[str] = []
        for entry in (e.strip() for e in visible.split(",")):
            if not _DEVICE.fullmatch(entry):  # CUDA stops at the first invalid entry ("-1", "")
                break
            devices.append(entry)
        if not devices:
            raise HyperdistError(f"--gpus all: CUDA_VISIBLE_DEVICES={visible!r} makes no GPU visible; unset it, "
                                 "or name the devices (--gpus 0,1)")
        return devices
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60,
                             env=dict(env))
    except FileNotFoundError:
        raise HyperdistError("--gpus all: no GPU found: CUDA_VISIBLE_DEVICES is not set and nvidia-smi is not "
                             "on PATH; name the devices (--gpus 0,1) or leave --gpus out to run on the CPU") from None
    except subprocess.TimeoutExpired:
        raise HyperdistError("--gpus all: `nvidia-smi -L` did not answer within 60 s; name the devices "
                             "(--gpus 0,1)") from None
    if out.returncode != 0:
        first = (out.stderr or out.stdout).strip().splitlines()
        raise HyperdistError(f"--gpus all: `nvidia-smi -L` failed (exit {out.returncode}"
                             f"{': ' + first[0] if first else ''}); name the devices (--gpus 0,1)")
    devices = re.findall(r"^GPU (\d+):", out.stdout, re.MULTILINE)
    if not devices:
        raise HyperdistError("--gpus all: `nvidia-smi -L` lists no GPU; name the devices (--gpus 0,1) or leave "
                             "--gpus out to run on the CPU")
    return devices


def visible_device(env: Mapping[str, str] | None = None) -> str | None:
    """What a worker records as its trials' device: 'gpu:<CUDA_VISIBLE_DEVICES>' when it is pinned
    to GPUs, 'cpu' when they are hidden, None when nothing says."""
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    visible = visible.strip()
    return "cpu" if visible in ("", "-1") else f"gpu:{visible}"


def forwarded_args(ctx: click.Context, drop: set[str]) -> list[str]:
    """The options given on this command's line, as arguments for the same command in a child
    (values from the environment or defaults reach the child by themselves)."""
    args: list[str] = []
    for p in ctx.command.params:
        if not isinstance(p, click.Option) or p.name in drop or p.name is None:
            continue
        if ctx.get_parameter_source(p.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[p.name]
        if p.is_flag:
            args += [p.opts[0]] if value else list(p.secondary_opts[:1])
        else:
            for v in (value if p.multiple else [value]):
                args += [p.opts[0], str(v)]
    return args


def supervise(command: list[str], devices: list[str], env: Mapping[str, str]) -> int:
    """Run `hyperdist <command>` once per device, each seeing only its device; forward SIGTERM/SIGINT
    to them once (they hand their trials back) and exit with the worst exit code."""
    from hyperdist.objective.reference import python_argv

    argv = python_argv("from hyperdist.cli import main; main(prog_name='hyperdist')")  # as spawn_workers starts them
    procs: list[subprocess.Popen] = []
    for device in devices:
        child_env: dict[str, Any] = dict(env, CUDA_VISIBLE_DEVICES=device)
        # a session of its own: a terminal's Ctrl-C reaches the supervisor only, which forwards it once
        proc = subprocess.Popen([*argv, *command], env=child_env, start_new_session=True)
        procs.append(proc)
        log.info("worker pid %d on GPU %s", proc.pid, device)

    def forward(signum: int, frame: Any) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [p.wait() for p in procs]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for device, code in zip(devices, codes):
        if code:
            log.error("the worker on GPU %s exited with code %d", device, code)
    return max((abs(c) for c in codes), default=0)
