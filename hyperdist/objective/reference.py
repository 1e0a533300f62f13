"""Objectives named by reference (`module:function` or `path/to/file.py:function`), loaded under an
allow list.

The database names an experiment's objective only by such a reference, never by code, and anyone
who can write to the database can write one. So a worker decides twice: before importing, whether
the text names a module or file its operator allowed; after importing, whether the object found is
a public callable *defined* in that module (an entry naming one function matches only that
function). A reference is one module or file and one plain name: no dotted attribute paths, so
data never walks from an allowed module into something it imported (`objs:os.system`).

File references are stored relative to the directory the search ran in, so a worker elsewhere
resolves them against its own working directory (or `--path`): the same project layout on every
machine, not the same absolute path. Imported files and modules are found after the standard
library and installed packages, so a `csv.py` next to an objective cannot shadow `csv`.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from hyperdist.errors import ObjectiveError, ObjectiveNotAllowed, SpaceError

_FORMS = "expected 'module:function' or 'path/to/file.py:function'"


@dataclass(frozen=True)
class Reference:
    """A parsed reference: a module name or a `.py` file, and one attribute name in it."""

    target: str
    name: str

    @property
    def is_file(self) -> bool:
        return is_file_target(self.target)

    def path(self, base: Path | None = None) -> Path:
        """The file, resolved against `base` (default: the working directory) when relative."""
        return ((base or Path.cwd()) / self.target).resolve()

    def __str__(self) -> str:
        return f"{self.target}:{self.name}"


def is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def parse(ref: Any) -> Reference:
    """Check a reference's shape (read from a command line or from a database)."""
    if not isinstance(ref, str) or ":" not in ref:
        raise ObjectiveError(f"{_short(ref)} is not a reference; {_FORMS}")
    target, name = ref.rsplit(":", 1)
    if not name.isidentifier():
        raise ObjectiveError(f"{_short(ref)}: {name!r} is not a Python name (one name: no dots, spaces or "
                             f"other characters); {_FORMS}")
    if is_file_target(target):
        if not target.endswith(".py") or "\0" in target:
            raise ObjectiveError(f"{_short(ref)}: {target!r} is not a .py file; {_FORMS}")
    elif not target or not all(part.isidentifier() for part in target.split(".")):
        raise ObjectiveError(f"{_short(ref)}: {target!r} is not a module name; {_FORMS}")
    return Reference(target, name)


def split_reference(ref: str) -> tuple[str, str]:
    """(module or file, name) of a reference."""
    r = parse(ref)
    return r.target, r.name


def canonical(ref: str, root: Path | None = None) -> str:
    """The form stored in an experiment: a file inside `root` (the working directory) relative to it,
    in '/' form, so workers started from the same project directory anywhere resolve it."""
    r = parse(ref)
    if not r.is_file:
        return str(r)
    root = (root or Path.cwd()).resolve()
    path = r.path(root)
    try:
        return f"{path.relative_to(root).as_posix()}:{r.name}"
    except ValueError:
        return f"{path}:{r.name}"


def same(a: str, b: str, base: Path | None = None) -> bool:
    """Whether two references name the same object (a relative and an absolute file path may)."""
    try:
        ra, rb = parse(a), parse(b)
    except ObjectiveError:
        return a == b
    if ra.is_file and rb.is_file:
        return ra.name == rb.name and ra.path(base) == rb.path(base)
    return str(ra) == str(rb)


class AllowList:
    """What a worker's operator allowed, one entry per `--allow`:

    * `module` or `package`: public functions defined in it (or its submodules);
    * `file.py` or `dir/`: public functions defined in that file (or in a `.py` file below the dir);
    * `module:function` or `file.py:function`: exactly that function.

    Relative paths are taken from the worker's working directory.
    """

    def __init__(self, entries: Iterable[str], cwd: Path | None = None) -> None:
        self.entries = [e for e in entries if e]
        cwd = (cwd or Path.cwd()).resolve()
        self._exact: set[tuple[str, str]] = set()
        self._modules: list[str] = []
        self._paths: list[Path] = []
        for entry in self.entries:
            if ":" in entry and entry.rsplit(":", 1)[1].isidentifier():
                r = parse(entry)
                self._exact.add((str(r.path(cwd)) if r.is_file else r.target, r.name))
            elif is_file_target(entry) or (cwd / entry).exists():
                self._paths.append((cwd / entry).resolve())
                if all(part.isidentifier() for part in entry.split(".")):  # a package directory
                    self._modules.append(entry)
            elif all(part.isidentifier() for part in entry.split(".")):
                self._modules.append(entry)
            else:
                raise ObjectiveError(f"--allow {entry!r} is neither a module name, a path, nor a reference ({_FORMS})")

    @classmethod
    def from_options(cls, values: Iterable[str], cwd: Path | None = None) -> "AllowList":
        """Entries from repeated `--allow` options, each possibly os.pathsep-separated (as
        HYPERDIST_ALLOW is); never split on white space, which paths may contain."""
        return cls([part.strip() for value in values for part in _split_entries(value)], cwd)

    def __str__(self) -> str:
        return ", ".join(self.entries) or "nothing"

    def _key(self, r: Reference, base: Path) -> str:
        return str(r.path(base)) if r.is_file else r.target

    def exact(self, r: Reference, base: Path) -> bool:
        return (self._key(r, base), r.name) in self._exact

    def may_import(self, r: Reference, base: Path) -> bool:
        """Whether the reference's module or file may be imported at all (checked before importing)."""
        if self.exact(r, base):
            return True
        if r.name.startswith("_"):
            return False
        if r.is_file:
            return self._permits(r.path(base))
        # a file entry also permits the module that file is (`--allow mysearch.py`, `mysearch:objective`)
        return any(_within(r.target, m) for m in self._modules) or self._permits(_module_file(r.target, base))

    def meant(self, r: Reference, base: Path) -> Path | None:
        """The allowed file a reference by bare file name was meant for, when no such file is in
        `base` (a worker started in another directory without --path), else None. Only then is the
        file's absence told: the refusal of any other path says nothing of what exists here."""
        if not r.is_file or Path(r.target).name != r.target or r.path(base).exists():
            return None
        files = [p for p in self._paths if p.suffix == ".py"] + [Path(t) for t, _ in sorted(self._exact) if t.endswith(".py")]
        found = [p for p in files if p.name == r.target] + [p / r.target for p in self._paths if p.is_dir()]
        return next((p for p in found if p.is_file()), None)

    def _permits(self, path: Path | None) -> bool:
        return path is not None and any(path == p or p in path.parents for p in self._paths)

    def refusal(self, ref: str, base: Path | None = None) -> ObjectiveNotAllowed:
        """The refusal, with file paths resolved (an entry is taken from the working directory, a
        reference from --path: the same text can name two files)."""
        r, where = parse(ref), ""
        if r.is_file:
            where = f" (the file {r.path(base)})"
        resolved = [f"{p}" for p in self._paths] + [f"{t}:{n}" for t, n in sorted(self._exact)] + self._modules
        return ObjectiveNotAllowed(
            f"objective {ref!r}{where} is not allowed on this worker (allowed: {self}; resolved: "
            f"{', '.join(resolved) or 'nothing'}); an entry naming a module or file permits the public functions "
            "defined in it, 'module:function' exactly that function; start the worker with --allow accordingly")


def load_objective(ref: str, allow: AllowList | None, base: Path | None = None) -> Callable[..., Any]:
    """The callable named by `ref`. With an allow list (a worker), refuse before importing anything
    not allowed, and after importing anything not defined where the entry allows."""
    r = parse(ref)
    base = (base or Path.cwd()).resolve()
    if allow is not None and not allow.may_import(r, base):
        meant = allow.meant(r, base)
        if meant is not None:  # the worker looks in the wrong place: say where, not "refused"
            raise _missing_file(r.path(base), ref, base, meant)
        raise allow.refusal(ref, base)
    module = _import_file(r.path(base), ref, base) if r.is_file else _import_module(r.target, base)
    try:
        obj = module.__dict__[r.name]  # the module's own namespace: no descriptors, no __getattr__ hooks
    except KeyError:
        raise ObjectiveError(f"objective {ref!r}: {r.target!r} has no attribute {r.name!r}") from None
    if allow is not None and not allow.exact(r, base):
        defined_in = getattr(obj, "__module__", None)
        home = module.__name__ if r.is_file else r.target
        if not isinstance(defined_in, str) or not (defined_in == home or (not r.is_file and _within(defined_in, home))):
            raise ObjectiveNotAllowed(
                f"objective {ref!r} is defined in {defined_in!r}, not in {r.target!r}: an --allow entry naming a "
                f"module or file only permits functions defined there (allowed: {allow})")
    if not callable(obj):
        raise ObjectiveError(f"objective {ref!r} is a {type(obj).__name__}, not a callable")
    return obj


def load_callable(ref: str) -> Callable[..., Any]:
    """The user's own objective, loaded where the search starts (no allow list: it is their file)."""
    return load_objective(ref, None)


def load_object(ref: str, what: str) -> Any:
    """Any attribute named by a reference in the user's own code (a space on the command line)."""
    r = parse(ref)
    module = _import_file(r.path(), ref, Path.cwd()) if r.is_file else _import_module(r.target, Path.cwd())
    try:
        return module.__dict__[r.name]
    except KeyError:
        raise ObjectiveError(f"{what} {ref!r}: {r.target!r} has no attribute {r.name!r}") from None


def load_space(ref: str) -> Any:
    """A space from 'module:attr', 'file.py:attr', or a JSON space document 'space.json'."""
    from hyperdist.space.compiled import space_from_json

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
    return load_object(ref, "space")


def reference_of(fn: Callable[..., Any]) -> str:
    """The reference that lets another process import `fn` (a module-level function)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or not qualname.isidentifier():
        raise ObjectiveError(
            f"objective {fn!r} cannot be named for workers: use a module-level function, not a lambda, "
            "closure or method")
    if module == "__main__":
        path = getattr(sys.modules["__main__"], "__file__", None)
        if not path:
            raise ObjectiveError("an objective defined interactively cannot be sent to workers; put it in a file")
        return canonical(f"{path}:{qualname}")
    return f"{module}:{qualname}"


def _split_entries(value: str) -> list[str]:
    """Split on os.pathsep. Where that is ':', which references use too, 'X:name' stays one entry
    when `name` is a plain identifier: read as the narrower exact reference, never as more."""
    if os.pathsep != ":":
        return value.split(os.pathsep)
    out: list[str] = []
    for part in value.split(":"):
        if out and out[-1] and ":" not in out[-1] and part.isidentifier():
            out[-1] += ":" + part
        else:
            out.append(part)
    return out


def python_argv(statement: str) -> list[str]:
    """A command that runs `statement` in a fresh interpreter without the working directory ahead
    of the standard library (`-m` and `-c` put it first; a `json.py` there would shadow `json`)."""
    return [sys.executable, "-c", f"import sys; del sys.path[0]; {statement}"]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _append_path(directory: Path) -> None:
    """Let the user's code import its neighbours, after the standard library and installed packages."""
    entry = str(directory)
    if entry not in sys.path:
        sys.path.append(entry)


def _module_file(name: str, base: Path) -> Path | None:
    """The file the top-level module `name` would be imported from (the way `_import_module` imports:
    installed packages first, then `base`), found without running any of its code; None for a
    dotted name (finding it would run its packages' `__init__`) or a module that is no file."""
    if not name.isidentifier() or name in sys.builtin_module_names:
        return None
    if importlib.machinery.FrozenImporter.find_spec(name) is not None:
        return None
    if name in sys.modules:
        origin = getattr(sys.modules[name], "__file__", None)
    else:
        spec = importlib.machinery.PathFinder.find_spec(name, sys.path + [str(base)])
        origin = spec.origin if spec is not None else None
    return Path(origin).resolve() if isinstance(origin, str) else None


def _import_module(name: str, base: Path) -> Any:
    _append_path(base)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ObjectiveError(f"cannot import module {name!r} (searched the installed packages, then {str(base)!r}): "
                             f"{exc}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ObjectiveError(f"importing module {name!r} failed: {type(exc).__name__}: {exc}") from None


def _missing_file(path: Path, ref: str, base: Path, meant: Path | None = None) -> ObjectiveError:
    """The objective's file is not where the reference resolves; `meant`, the allowed file of that
    name elsewhere, tells which --path to pass."""
    fix = (f"pass --path {shlex.quote(str(meant.parent))} (where the allowed {str(meant)!r} is)" if meant
           else "run the worker in the project directory, or pass --path DIR")
    return ObjectiveError(f"objective file {str(path)!r} (from {ref!r}) does not exist; relative references resolve "
                          f"against {str(base)!r}: {fix}")


def _import_file(path: Path, ref: str, base: Path) -> Any:
    if not path.is_file():
        raise _missing_file(path, ref, base)
    _append_path(path.parent)
    name = _module_name(path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ObjectiveError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ObjectiveError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}") from None
    return module


def _module_name(path: Path) -> str:
    """The file's own stem when importing that name finds this very file (its directory is on
    sys.path, appended): the processes an objective starts (multiprocessing's spawn, joblib) then
    import its functions as they would a module's. A stem taken by another module or file gets a
    name of its own, so nothing the worker imports is shadowed."""
    stem = path.stem
    if stem.isidentifier():
        loaded = sys.modules.get(stem)
        if loaded is not None:
            if Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve():
                return stem
        else:
            importlib.invalidate_caches()  # the directory may be new to the finders
            try:
                spec = importlib.util.find_spec(stem)
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.origin and Path(spec.origin).resolve() == path.resolve():
                return stem
    return f"hyperdist_user_{abs(hash(str(path)))}_{stem}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
