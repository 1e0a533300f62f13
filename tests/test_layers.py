"""The layers of docs/concepts.md, checked on the source: each subpackage imports only from the
layers above it, so a newcomer can read a trial's life in order and test a layer without the ones
after it. Pure source checks: the fast tier."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hyperdist

ROOT = Path(hyperdist.__file__).parent
ORDER = ["space", "algorithms", "store", "objective", "local", "server", "distributed"]
SHARED = {"errors"}  # imported by every layer
ALLOWED = {layer: set(ORDER[:i]) | SHARED for i, layer in enumerate(ORDER)}
ALLOWED["views"] = {"space", "algorithms", "store", "objective"} | SHARED
EXCEPTIONS = {("local", "hyperdist.integrations.tracking"), ("distributed", "hyperdist.integrations.tracking")}


def _modules(path: Path) -> list[str]:
    """Every module a file imports (hyperdist's own or not), at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


def _imports(path: Path) -> list[str]:
    """Every hyperdist module a file imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hyperdist":
            assert node.level == 0, f"{path}: relative import"
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "hyperdist"]
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_above_it(layer):
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no layer {layer}/"
    for path in files:
        for module in _imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else "hyperdist"
            if target == layer or (layer, module) in EXCEPTIONS:
                continue
            assert target in ALLOWED[layer], f"{path.relative_to(ROOT)} imports {module} ({layer}/ may import {sorted(ALLOWED[layer])})"


def test_no_module_lives_outside_a_layer_but_the_package_surface():
    """Top-level modules are the package's surface only: Hyperopt's names and shared errors."""
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top == {"__init__", "__main__", "errors", "exceptions", "sklearn", "demo", "mongoexp"}, top


def test_hyperopt_module_paths_still_import():
    import importlib

    for name, attr in [("hp", "uniform"), ("tpe", "suggest"), ("rand", "suggest"), ("fmin", "generate_trials_to_calculate"),
                       ("early_stop", "no_progress_loss"), ("plotting", "main_plot_history"),
                       ("exceptions", "AllTrialsFailed"), ("pyll.stochastic", "sample"), ("mongoexp", "MongoTrials")]:
        assert callable(getattr(importlib.import_module(f"hyperdist.{name}"), attr)), name


def test_no_code_ever_travels_through_the_database():
    """No module of the package can deserialise code: no pickle/marshal/dill/shelve, no eval/exec."""
    banned = {"pickle", "cPickle", "marshal", "dill", "cloudpickle", "shelve"}
    for path in ROOT.rglob("*.py"):
        assert not banned & {m.split(".")[0] for m in _modules(path)}, f"{path}"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec"), f"{path}:{node.lineno} calls {node.func.id}"


def test_only_the_store_talks_to_mongodb():
    """pymongo and bson are imported by hyperdist/store/ alone, so the algorithms, coordinator and
    worker stay testable without a server and the protocol lives in one place."""
    for path in ROOT.rglob("*.py"):
        if path.parent.name != "store":
            assert not {"pymongo", "bson"} & {m.split(".")[0] for m in _modules(path)}, f"{path}"
