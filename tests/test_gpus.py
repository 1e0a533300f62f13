"""GPU-aware workers with fake device lists: an `nvidia-smi` script on PATH, or CUDA_VISIBLE_DEVICES.
The objective returns the CUDA_VISIBLE_DEVICES its worker saw; each trial records its device."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import objectives
from hyperdist.algorithms import tpe
from hyperdist.distributed.coordinator import Coordinator, CoordinatorConfig, StopRules
from hyperdist.errors import HyperdistError
from hyperdist.distributed.gpus import parse_gpus, visible_device
from hyperdist.space.compiled import compile_space
from hyperdist.views.status import render_status
from hyperdist.store import Store
from harness import TESTS, worker_env

OBJECTIVE = f"{TESTS / 'objectives.py'}:sees_device"
NVIDIA_SMI_L = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5a1b2c3d-0000-1111-2222-333344445555)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-6a1b2c3d-0000-1111-2222-333344445555)
  MIG 1g.5gb      Device  0: (UUID: MIG-7a1b2c3d-0000-1111-2222-333344445555)
GPU 3: NVIDIA A100-SXM4-40GB (UUID: GPU-8a1b2c3d-0000-1111-2222-333344445555)
"""


def _fake_nvidia_smi(tmp_path: Path, listing: str = NVIDIA_SMI_L, code: int = 0) -> dict[str, str]:
    """A PATH whose `nvidia-smi -L` prints `listing`; the environment without CUDA_VISIBLE_DEVICES."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "listing.txt").write_text(listing)
    script = bin_dir / "nvidia-smi"
    script.write_text(f'#!/bin/sh\n[ "$1" = "-L" ] || exit 9\ncat "{bin_dir / "listing.txt"}"\nexit {code}\n')
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_all_comes_from_nvidia_smi_or_cuda_visible_devices(tmp_path):
    env = _fake_nvidia_smi(tmp_path)
    assert parse_gpus("all", env) == ["0", "1", "3"]           # MIG lines are not whole GPUs
    assert parse_gpus("all", dict(env, CUDA_VISIBLE_DEVICES="2,5")) == ["2", "5"]  # the scheduler's choice wins
    assert parse_gpus(" 0,1,3 ", env) == ["0", "1", "3"]
    assert parse_gpus("GPU-5a1b2c3d-0000,1", env) == ["GPU-5a1b2c3d-0000", "1"]


@pytest.mark.parametrize("spec, env_change, fragment", [
    ("all", {"PATH": "/nonexistent"}, "nvidia-smi is not on PATH"),
    ("all", {"CUDA_VISIBLE_DEVICES": "-1"}, "CUDA_VISIBLE_DEVICES='-1' makes no GPU visible"),
    ("all", {"CUDA_VISIBLE_DEVICES": ""}, "makes no GPU visible"),
    ("0,,1", {}, "'' is not a device"),
    ("0,gpu1", {}, "'gpu1' is not a device"),
    ("1,1", {}, "device 1 is named twice"),
])
def test_bad_device_lists_fail_with_one_clear_line(tmp_path, spec, env_change, fragment):
    env = dict(_fake_nvidia_smi(tmp_path), **env_change)
    with pytest.raises(HyperdistError, match="--gpus") as err:
        parse_gpus(spec, env)
    assert fragment in str(err.value)


def test_nvidia_smi_that_fails_or_lists_nothing(tmp_path):
    with pytest.raises(HyperdistError, match=r"failed \(exit 9: NVIDIA-SMI has failed"):
        parse_gpus("all", _fake_nvidia_smi(tmp_path, "NVIDIA-SMI has failed because it couldn't communicate\n", 9))
    with pytest.raises(HyperdistError, match="lists no GPU"):
        parse_gpus("all", _fake_nvidia_smi(tmp_path, "No devices found.\n"))


def test_visible_device_is_what_a_trial_records():
    assert visible_device({"CUDA_VISIBLE_DEVICES": "3"}) == "gpu:3"
    assert visible_device({"CUDA_VISIBLE_DEVICES": "-1"}) == "cpu"
    assert visible_device({}) is None


@pytest.mark.slow
def test_worker_gpus_all_runs_one_worker_per_device(mongo_url, db_name, tmp_path):
    """`hyperdist worker --gpus all` with three fake GPUs: three workers, each trial ran on the
    device its worker was given, and --max-trials 1 each makes every device run one of the three."""
    store = Store(mongo_url, db=db_name)
    coord = Coordinator(store, "gpus", compile_space(objectives.space), tpe.suggest, StopRules(3),
                        CoordinatorConfig(workers=3), objective=OBJECTIVE)
    coord.start()
    env = worker_env(**{k: v for k, v in _fake_nvidia_smi(tmp_path).items() if k == "PATH"})
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["HYPERDIST_MONGO_URL"] = mongo_url
    sup = subprocess.Popen([sys.executable, "-m", "hyperdist", "worker", "--db", db_name, "--exp", "gpus",
                            "--allow", str(TESTS / "objectives.py"), "--gpus", "all", "--max-trials", "1",
                            "--idle-timeout", "120"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        coord.run()
        out, _ = sup.communicate(timeout=180)
    finally:
        sup.kill()
    assert sup.returncode == 0, out
    assert sorted(line.split(" on GPU ")[1] for line in out.splitlines() if " on GPU " in line) == ["0", "1", "3"]
    docs = store.history("gpus")
    assert [d["state"] for d in docs] == ["DONE"] * 3
    assert sorted(d["device"] for d in docs) == ["gpu:0", "gpu:1", "gpu:3"]
    for d in docs:
        assert d["device"] == f"gpu:{d['result']['cuda']}"  # what the objective saw is what was recorded
    assert len({d["owner"] for d in docs}) == 3
    store.close()


@pytest.mark.slow
def test_search_spreads_local_workers_over_the_gpus(mongo_url, db_name, tmp_path):
    """`hyperdist search --gpus 0,1 --workers 4`: two workers per device; status shows devices."""
    env = worker_env(HYPERDIST_TEST_DELAY="0.05")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    run = subprocess.run([sys.executable, "-m", "hyperdist", "search", OBJECTIVE, "--space",
                          f"{TESTS / 'objectives.py'}:space", "--max-evals", "16", "--mongo", mongo_url, "--db",
                          db_name, "--exp", "gpus2", "--workers", "4", "--gpus", "0,1", "--no-progress",
                          "--data-dir", str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    store = Store(mongo_url, db=db_name)
    docs = store.history("gpus2")
    assert len(docs) == 16 and all(d["state"] == "DONE" for d in docs)
    assert {d["device"] for d in docs} <= {"gpu:0", "gpu:1"}
    for d in docs:
        assert d["device"] == f"gpu:{d['result']['cuda']}"
    text, _ = render_status(store, "gpus2")
    assert "trials per device: gpu:" in text
    store.close()
