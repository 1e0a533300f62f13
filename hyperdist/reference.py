"""Objects named by reference (`module:attr` or `path/to/file.py:attr`), loaded under an allow list.

The database names an experiment's objective only by such a reference, never by code. A worker
resolves it here, and refuses, before importing anything, a reference its operator did not allow.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import ObjectiveError, SpaceError


def split_reference(ref: str) -> tuple[str, str]:
    """'pkg.mod:attr' or 'dir/file.py:attr' -> (target, attr), with a clear error otherwise."""
    if not isinstance(ref, str) or ":" not in ref.strip(":"):
        raise ObjectiveError(f"{ref!r} is not a reference; expected 'module:attribute' or 'path/to/file.py:attribute'")
    target, attr = ref.rsplit(":", 1)
    if not target or not attr or not all(part.isidentifier() for part in attr.split(".")):
        raise ObjectiveError(f"{ref!r} is not a reference; expected 'module:attribute' or 'path/to/file.py:attribute'")
    return target, attr


def is_file_target(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def canonical(ref: str, base: Path | None = None) -> str:
    """The form stored in experiments: file paths made absolute so workers elsewhere in the tree agree."""
    target, attr = split_reference(ref)
    if is_file_target(target):
        target = str(((base or Path.cwd()) / target).resolve())
    return f"{target}:{attr}"


def is_allowed(ref: str, allow: Iterable[str]) -> bool:
    """Allowed entries are module names (covering their submodules), directories, files, or full references."""
    target, _ = split_reference(ref)
    for entry in allow:
        if entry == ref:
            return True
        if is_file_target(target):
            path = Path(target).resolve()
            allowed = Path(split_reference(entry)[0] if ":" in entry and not Path(entry).exists() else entry).resolve()
            if path == allowed or allowed in path.parents:
                return True
        else:
            module = split_reference(entry)[0] if ":" in entry else entry
            if target == module or target.startswith(module + "."):
                return True
    return False


def load(ref: str, allow: Iterable[str] | None = None, what: str = "objective") -> Any:
    """Import the object named by `ref`; with an allow list, refuse anything outside it first."""
    target, attr = split_reference(ref)
    if allow is not None:
        allow = list(allow)
        if not is_allowed(ref, allow):
            raise ObjectiveError(
                f"{what} {ref!r} is not allowed on this worker (allowed: {allow or 'nothing'}); "
                "start the worker with --allow MODULE (or a path) to permit it"
            )
    module = _import_file(target) if is_file_target(target) else _import_module(target)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ObjectiveError(f"{what} {ref!r}: {target!r} has no attribute {attr!r}") from None
    return obj


def load_callable(ref: str, allow: Iterable[str] | None = None) -> Callable[..., Any]:
    fn = load(ref, allow)
    if not callable(fn):
        raise ObjectiveError(f"objective {ref!r} is a {type(fn).__name__}, not a callable")
    return fn


def reference_of(fn: Callable[..., Any]) -> str:
    """The reference that lets another process import `fn` (a module-level function)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname:
        raise ObjectiveError(
            f"objective {fn!r} cannot be named for workers: use a module-level function, not a lambda or closure"
        )
    if module == "__main__":
        path = getattr(sys.modules["__main__"], "__file__", None)
        if not path:
            raise ObjectiveError("an objective defined interactively cannot be sent to workers; put it in a file")
        return f"{Path(path).resolve()}:{qualname}"
    return f"{module}:{qualname}"


def load_space(ref: str) -> Any:
    """A space from 'module:attr', 'file.py:attr', or a JSON space document 'space.json'."""
    from .space import space_from_json

    if ref.endswith(".json") and ":" not in ref:
        try:
            with open(ref) as fh:
                data = json.load(fh)
        except OSError as exc:
            raise SpaceError(f"cannot read space file {ref!r}: {exc.strerror}") from None
        except ValueError as exc:
            raise SpaceError(f"space file {ref!r} is not valid JSON: {exc}") from None
        try:
            return space_from_json(data)
        except SpaceError as exc:
            raise SpaceError(f"space file {ref!r}: {exc}") from None
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise SpaceError(f"space file {ref!r} is malformed: {exc}") from None
    return load(ref, what="space")


def _import_module(name: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ObjectiveError(f"cannot import module {name!r}: {exc}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ObjectiveError(f"importing module {name!r} failed: {type(exc).__name__}: {exc}") from None


def _import_file(target: str) -> Any:
    path = Path(target).resolve()
    if not path.is_file():
        raise ObjectiveError(f"no such file {target!r}")
    name = f"hyperdist_user_{abs(hash(str(path)))}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ObjectiveError(f"cannot load {target!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ObjectiveError(f"importing {target!r} failed: {type(exc).__name__}: {exc}") from None
    return module
