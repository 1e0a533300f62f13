"""Running one objective call: in this process under a time limit, or in a fresh child process.

Every search runs its objective through here: `fmin` in one process, a worker in process or in a
child. All paths return the same `Outcome`: the normalised result and, for a failed trial, the error
record. A fresh process per trial isolates the worker from objectives that leak memory, hang in C
code or kill their own interpreter; the child gets the trial as JSON on stdin and writes its
outcome as JSON to a file, so whatever the objective prints cannot corrupt it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable

from hyperdist.errors import redact
from hyperdist.objective.processes import kill_group, trial_group_child
from hyperdist.objective.pruning import TrialContext, TrialPruned, make_pruner, takes_context
from hyperdist.objective.reference import python_argv
from hyperdist.objective.result import STATUS_FAIL, UnstorableResult, exception_error, normalize, plain


@dataclass
class Outcome:
    result: dict[str, Any]
    error: dict[str, str] | None
    # in process, for `fmin` only (keep=True): the objective's own exception and what it returned,
    # which it re-raises as Hyperopt does unless told to catch. A worker keeps neither: a traceback
    # holds the failed call's frames, and with them all the memory the objective had allocated
    exception: Exception | None = None
    returned: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result.get("status") != STATUS_FAIL


class TrialTimeout(BaseException):
    """The objective ran past the per-trial time limit (a BaseException, so that an objective's own
    `except Exception` does not swallow it)."""


def failed(kind: str, message: str) -> Outcome:
    """A failed trial's outcome; the message may quote the objective (its exit code, a bad value), so
    it is redacted as exception_error's are."""
    return Outcome({"status": STATUS_FAIL}, {"type": kind, "message": redact(message)})


def settle(raw: Any, storable: bool = True, keep: bool = False) -> Outcome:
    """Normalise what the objective returned and, for a database, make it storable (plain JSON/BSON
    types) before anything is written: a value no store can hold fails this trial, never the worker.
    An in-memory `Trials` (storable=False) keeps any Python object in a result, as Hyperopt's does."""
    try:
        result, error = normalize(raw)
        return Outcome(plain(result) if storable else result, error, returned=raw if keep else None)
    except UnstorableResult as exc:
        return failed("UnstorableResult", str(exc))
    except Exception as exc:  # a result object whose own methods raise while it is read
        return failed("UnstorableResult", f"reading the result raised {type(exc).__name__}: {exception_error(exc)['message']}")


def run_in_process(fn: Callable[..., Any], config: Any, timeout: float | None, ctx: TrialContext | None = None, *,
                   storable: bool = True, contain_exits: bool = True, keep: bool = False) -> Outcome:
    """Call fn(config) (or fn(config, ctx)); a time limit uses SIGALRM, so only on the main thread.

    A worker contains an objective's sys.exit() and KeyboardInterrupt as a failed trial (its own
    stop signals are handled apart); `fmin` (contain_exits=False) lets them through, so Ctrl-C stops
    the person's loop. Only `keep` returns the exception and the returned value in the Outcome."""
    use_alarm = bool(timeout) and threading.current_thread() is threading.main_thread()
    if use_alarm:
        def on_alarm(signum: int, frame: Any) -> None:
            raise TrialTimeout(f"objective exceeded the per-trial timeout of {timeout:g} s")
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, float(timeout or 0))
    pruned = False
    try:
        raw = fn(config) if ctx is None else fn(config, ctx)
    except TrialTimeout as exc:
        return failed("TrialTimeout", str(exc))
    except TrialPruned:
        raw, pruned = None, True
    except Exception as exc:
        return Outcome({"status": STATUS_FAIL}, exception_error(exc), exc if keep else None)
    except SystemExit as exc:  # the objective's own exit: the worker stays up
        if not contain_exits:
            raise
        return failed("ObjectiveExited", f"objective called sys.exit({exc.code!r})")
    except KeyboardInterrupt as exc:
        if not contain_exits:
            raise
        error = exception_error(exc)
        error.update(type="ObjectiveExited", message="objective raised KeyboardInterrupt")
        return Outcome({"status": STATUS_FAIL}, error)
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if ctx is not None and (pruned or ctx.pruned_at is not None):
        return Outcome(ctx.pruned_result(), None)
    return settle(raw, storable, keep)


class ChildProcess:
    """One objective call in a fresh interpreter; `terminate()` may be called from a signal handler."""

    def __init__(self, objective: str, space_json: dict, params: dict, pruning: dict | None = None, *,
                 allow: list[str] | None = None, base: str | None = None) -> None:
        fd, self.out_path = tempfile.mkstemp(prefix="hyperdist-trial-", suffix=".json")
        os.close(fd)
        self.proc = subprocess.Popen(  # its own process group, killed with the worker (objective/processes.py)
            [*python_argv("from hyperdist.objective.evaluation import _child_main; _child_main(sys.argv[1])"), self.out_path],
            stdin=subprocess.PIPE, cwd=os.getcwd(), preexec_fn=trial_group_child,
        )
        assert self.proc.stdin is not None
        job = {"objective": objective, "space": space_json, "params": params, "pruning": pruning, "allow": allow,
               "base": base or os.getcwd()}
        self.proc.stdin.write(json.dumps(job).encode())  # secrets travel on stdin, never in argv
        self.proc.stdin.close()

    def terminate(self) -> None:
        """End the child and everything the objective started in it (its process group)."""
        kill_group(self.proc.pid)

    def wait(self, timeout: float | None) -> Outcome:
        try:
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.terminate()
                self.proc.wait()
                return failed("TrialTimeout", f"objective exceeded the per-trial timeout of {timeout:g} s")
            try:
                with open(self.out_path) as fh:
                    data = json.load(fh)
                return Outcome(data["result"], data["error"])
            except (OSError, ValueError, KeyError):
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                return failed("ObjectiveCrashed", f"the objective's process {how} before reporting a result")
        finally:
            self.terminate()  # what the objective started and left running ends with the trial
            os.unlink(self.out_path)


def store_context(store: Any, exp_key: str, trial_id: Any, token: str, tid: int, pruner: Any) -> TrialContext:
    """A context whose reports go to the trial document and whose peers are the experiment's trials."""
    return TrialContext(tid, make_pruner(pruner), store.peers(exp_key, trial_id),
                        lambda step, value: store.report_intermediate(trial_id, token, step, value))


def _child_main(out_path: str) -> None:
    from pathlib import Path

    from hyperdist.objective.reference import AllowList, load_objective
    from hyperdist.space.compiled import space_from_json

    job = json.load(sys.stdin)
    try:
        space = space_from_json(job["space"])
        allow = None if job.get("allow") is None else AllowList(job["allow"])
        fn = load_objective(job["objective"], allow, Path(job["base"]))
        ctx = None
        if job.get("pruning") and takes_context(fn):
            from hyperdist.store import Store

            p = job["pruning"]
            ctx = store_context(Store(p["url"], db=p["db"]), p["exp_key"], p["trial_id"], p["token"], p["tid"],
                                p["pruner"])
        outcome = run_in_process(fn, space.eval(job["params"]), None, ctx)
    except Exception as exc:
        outcome = Outcome({"status": STATUS_FAIL}, exception_error(exc))
    tmp = out_path + ".tmp"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:  # results only for us
        json.dump({"result": outcome.result, "error": outcome.error}, fh)
    os.replace(tmp, out_path)
