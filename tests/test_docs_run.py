"""Every shell command and Python block of README.md and docs/ runs, in a virtualenv installed exactly
as README.md's quickstart says, from a copy of the repository (one venv per test session; each
document in a fresh copy, its blocks in order, so a block can use what an earlier one made).

Blocks that are not run, and why (each is still checked, where a check means something):
- docker / kubernetes (yaml) / slurm blocks: no engine or cluster here; their structure is checked
  (workers run as an Indexed Job, never a Deployment) and every `hyperdist` command they hold must
  name an existing command with existing options;
- blocks addressing another machine (a placeholder host such as `db.example`, or a URL in `$URL` /
  `$HYPERDIST_MONGO_URL`): their `hyperdist` commands are checked the same way (the same commands
  against the local server run in docs/quickstart.md's "Workers started by hand"); a Python one
  compiles, the hyperdist names it imports exist, and (outside docs/integrations.md, see below)
  every name it uses is imported or defined in it: it runs as printed once pointed at a server;
- blocks that run a benchmark (`benchmarks/...`) or the test suite (`pytest`, `.ci/run`): records
  of how numbers were measured, minutes to hours each; the files they name must exist.
- Python blocks of docs/integrations.md: fragments of a user's training code (they use the user's
  data and model, and libraries of optional extras the README's install does not include); each is
  compiled and the hyperdist names it imports must exist. The callbacks, the MLflow log and the
  estimator they show run for real in tests/test_framework_callbacks.py, test_mlflow.py and
  test_sklearn_search.py.
And one command is run differently: `hyperdist dashboard` serves until Ctrl-C, so it runs for 15 s on
a free port (`--port 0` added) and must still be serving when `timeout` interrupts it.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml

from hyperdist.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
REMOTE = re.compile(r"\b[\w-]+\.example\b|\$URL\b|\$HYPERDIST_MONGO_URL|\$\{HYPERDIST_MONGO_URL")
CLUSTER = re.compile(r"^\s*(docker|kubectl|srun|sbatch)\b|#SBATCH", re.M)
RECORD = re.compile(r"benchmarks/|\bpytest\b|\.ci/run")
SERVING = re.compile(r"^(\s*)(hyperdist dashboard\b[^#\n]*?)\s*(#.*)?$", re.M)


def _bounded(match: re.Match) -> str:
    """A serving command, stopped after 15 s: timeout's 124 means it was still serving."""
    return f"{match.group(1)}timeout -s INT 15 {match.group(2)} --port 0 || [ $? -eq 124 ]"


@dataclass
class Block:
    lang: str
    text: str
    line: int

    @property
    def writes_file(self) -> str | None:
        """A Python block whose first line is `# name.py` is that file's content."""
        first = self.text.splitlines()[0] if self.text else ""
        match = re.fullmatch(r"#\s*([\w./-]+\.py)\s*", first)
        return match.group(1) if self.lang == "python" and match else None


FRAGMENTS = {"integrations.md"}
HYPERDIST_IMPORT = re.compile(r"^from (hyperdist[\w.]*) import ([\w, ]+)$", re.M)


def check_fragment(block: Block, where: str) -> None:
    """A Python fragment compiles and the hyperdist names it imports exist (read from the source,
    so an optional library the module imports need not be installed)."""
    import importlib.util

    compile(block.text, where, "exec")
    for module, names in HYPERDIST_IMPORT.findall(block.text):
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{where}: no module {module}"
        source = Path(spec.origin).read_text()
        for name in (n.strip() for n in names.split(",")):
            assert re.search(rf"^(class|def) {name}\b|^{name} =|import .*\b{name}\b", source, re.M), \
                f"{where}: {module} has no {name}"


def check_names(block: Block, where: str) -> None:
    """Every name the block reads is a builtin or imported or assigned in the block (symtable
    reads nested scopes' free names too)."""
    import builtins
    import symtable

    top = symtable.symtable(block.text, where, "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()} | set(dir(builtins))
    tables, used = [top], set()
    while tables:
        table = tables.pop()
        tables += table.get_children()
        used |= {s.get_name() for s in table.get_symbols()
                 if s.is_referenced() and (table is top or s.is_global()) and not s.is_assigned()}
    assert used <= defined, f"{where}: {sorted(used - defined)} used but never imported or defined"


def kind_in(doc: Path, block: Block) -> str:
    what = kind(block)
    return "fragment" if what == "run" and block.lang == "python" and doc.name in FRAGMENTS else what


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def kind(block: Block) -> str:
    if block.lang == "yaml":
        return "kubernetes"
    if block.lang not in ("bash", "sh", "python"):
        return "other"
    if CLUSTER.search(block.text):
        return "cluster"
    if REMOTE.search(block.text):
        return "remote"
    if block.lang != "python" and RECORD.search(block.text):
        return "record"
    return "run"


def _commands(shell: str) -> list[list[str]]:
    """The argument lists of every `hyperdist ...` command in a shell block."""
    joined = re.sub(r"\\\n", " ", shell)
    found = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0]
        for part in re.split(r"&&|\|\||;|\||&(?!\w)", line):
            try:
                words = shlex.split(part)
            except ValueError:
                continue
            for i, word in enumerate(words):
                if word.endswith("hyperdist") and (i == 0 or words[i - 1] in ("exec", "srun", "nice")):
                    found.append(words[i + 1:])
    return found


def check_command(args: list[str]) -> None:
    """`hyperdist ARGS` names an existing command, and every option it passes exists there."""
    cmd: click.Command = main
    rest = list(args)
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        assert rest[0] in cmd.commands, f"hyperdist has no command {rest[0]!r}: {args}"
        cmd = cmd.commands[rest.pop(0)]
    known = {o for p in cmd.params for o in getattr(p, "opts", [])} | {"--help"}
    used = {a.split("=")[0] for a in rest if a.startswith("--")}
    assert used <= known, f"`hyperdist {' '.join(args)}`: unknown options {sorted(used - known)}"


def check_kubernetes(text: str) -> None:
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert docs and all(d["kind"] != "Deployment" for d in docs), "workers exit when done: a Job, not a Deployment"
    for d in docs:
        assert d["apiVersion"] == "batch/v1" and d["kind"] == "Job"
        pod = d["spec"]["template"]["spec"]
        assert pod["restartPolicy"] in ("OnFailure", "Never")
        for container in pod["containers"]:
            if container.get("command"):
                assert container["command"][0] == "hyperdist"
                check_command(container["command"][1:])
    workers = [d for d in docs if "worker" in d["metadata"]["name"]]
    assert workers and all(d["spec"].get("completionMode") == "Indexed" for d in workers)


@pytest.fixture(scope="session")
def doc_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv of its own (hyperdist gets installed into it by README's first block)."""
    venv = tmp_path_factory.mktemp("docvenv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True,
                   timeout=600)
    return venv


def _copy_repo(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.egg-info", ".hyperdist", "build",
                                    "results", ".pytest_cache")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERDIST_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               HYPERDIST_SERVER_IDLE="30", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _install_line() -> str:
    first = next(b for b in blocks(ROOT / "README.md") if b.lang == "bash")
    match = re.search(r"pip install [^&\n]+", first.text)
    assert match, "README's first block must say how to install"
    return match.group(0).strip()


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_documented_blocks_run(doc: Path, doc_venv: Path, tmp_path: Path) -> None:
    work = _copy_repo(tmp_path / "repo")
    env = _env(doc_venv)
    if doc.name != "README.md" and any(kind(b) == "run" for b in blocks(doc)):
        # README's first block installs; other documents assume it was done
        subprocess.run(_install_line(), shell=True, cwd=work, env=env, check=True, timeout=1200,
                       capture_output=True)
    try:
        for block in blocks(doc):
            where = f"{doc.relative_to(ROOT)}:{block.line}"
            what = kind_in(doc, block)
            if what == "fragment":
                check_fragment(block, where)
            elif what == "kubernetes":
                check_kubernetes(block.text)
            elif what == "remote" and block.lang == "python":
                check_fragment(block, where)
                if doc.name not in FRAGMENTS:
                    check_names(block, where)
            elif what in ("cluster", "remote"):
                for args in _commands(block.text):
                    check_command(args)
            elif what == "record":
                for name in re.findall(r"(benchmarks/[\w./-]+\.(?:py|sh))", block.text):
                    assert (ROOT / name).exists(), f"{where}: {name} does not exist"
            elif what == "run" and block.writes_file:
                (work / block.writes_file).write_text(block.text)
            elif what == "run":
                if block.lang == "python":
                    cmd = [str(doc_venv / "bin" / "python"), "-c", block.text]
                else:
                    for args in _commands(block.text):
                        check_command(args)
                    cmd = ["bash", "-euo", "pipefail", "-c", SERVING.sub(_bounded, block.text)]
                run = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1200,
                                     stdin=subprocess.DEVNULL)
                assert run.returncode == 0, f"{where} failed ({run.returncode}):\n{block.text}\n" \
                                            f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    finally:
        if (work / ".hyperdist").exists():
            subprocess.run([str(doc_venv / "bin" / "hyperdist"), "server", "stop"], cwd=work, env=env,
                           capture_output=True, timeout=120)


def test_block_rules_cover_every_document() -> None:
    """Fast: every fenced block is of a known kind, and every `hyperdist` command in any of them
    exists with the options it passes."""
    for doc in DOCS:
        for block in blocks(doc):
            what = kind_in(doc, block)
            if what == "fragment":
                check_fragment(block, f"{doc.relative_to(ROOT)}:{block.line}")
            elif what == "remote" and block.lang == "python":
                check_fragment(block, f"{doc.relative_to(ROOT)}:{block.line}")
                if doc.name not in FRAGMENTS:
                    check_names(block, f"{doc.relative_to(ROOT)}:{block.line}")
            elif what == "kubernetes":
                check_kubernetes(block.text)
            elif block.lang in ("bash", "sh") and what != "record":
                for args in _commands(block.text):
                    check_command(args)
