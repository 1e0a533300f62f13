"""What can be checked of the container files without a Docker engine: structure, and that every
command they run exists in the CLI with the options they pass."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import yaml

from hyperdist.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """The click command a `hyperdist ...` argument list reaches, and the option names it uses."""
    cmd: click.Command = main
    rest = list(args)
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        cmd = cmd.commands[rest.pop(0)]
    return cmd, [a.split("=")[0] for a in rest if a.startswith("--")]


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in getattr(p, "opts", [])} | {"--help"}


def test_compose_file_structure():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["mongo"]["image"].startswith("mongo:7")
    assert "healthcheck" in services["mongo"] and compose["volumes"]
    assert any(v.split(":")[0] in compose["volumes"] for v in services["mongo"]["volumes"])
    for name in ("coordinator", "worker"):
        svc = services[name]
        assert svc["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert svc["environment"]["HYPERDIST_MONGO_URL"].startswith("mongodb://mongo:")
    assert "replicas" not in services["worker"].get("deploy", {})  # scaled with --scale worker=N
    assert services["worker"]["environment"]["HYPERDIST_ALLOW"]


def test_compose_commands_exist_in_the_cli():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    coordinator = services["coordinator"]
    assert coordinator["entrypoint"] == ["hyperdist"]
    cmd, used = _resolve([re.sub(r"\$\{(\w+):-(\w+)\}", r"\2", str(a)) for a in coordinator["command"]])
    assert cmd.name == "search" and set(used) <= _options(cmd), used


def test_worker_image_entrypoint_execs_the_worker():
    dockerfile = (ROOT / "worker" / "Dockerfile").read_text()
    entry = re.search(r"^ENTRYPOINT\s+(\[.*\])", dockerfile, re.M)
    assert entry, "ENTRYPOINT must be in exec form (a JSON array) so SIGTERM reaches the process"
    assert re.search(r"^USER\s+(?!root)\w+", dockerfile, re.M), "the image must run as a non-root user"
    script = (ROOT / "worker" / "entrypoint.sh").read_text()
    exec_line = next(line for line in script.splitlines() if line.strip().startswith("exec "))
    args = shlex.split(exec_line)[1:]
    assert args[0] == "hyperdist"
    cmd, _ = _resolve([a for a in args[1:] if not a.startswith('"$')])
    assert cmd.name == "worker"
    script_options = set(re.findall(r"(--[a-z][a-z-]+)", script))
    assert script_options <= _options(cmd), script_options - _options(cmd)
