"""Exceptions a user can act on, and the credential redaction every message goes through."""
from __future__ import annotations

import re


class HyperdistError(Exception):
    """Base for errors caused by input or environment; the CLI prints these without a traceback."""


class SpaceError(HyperdistError, ValueError):
    """A search space is malformed (bad label, bound, probability...)."""


class AllTrialsFailed(HyperdistError):
    """No trial finished with status ok, so there is no best trial."""


# --- Hyperopt's names (hyperopt.exceptions), as hyperdist errors: code catching either kind works.
BadSearchSpace = SpaceError


class DuplicateLabel(SpaceError):
    """Two different parameters of a space have the same label."""


class InvalidTrial(HyperdistError, ValueError):
    """Something that is not a trial (a point, a trial document) was given as one."""

    def __init__(self, msg: str, obj: object) -> None:
        super().__init__(f"{msg} {obj!r}")
        self.obj = obj


class InvalidResultStatus(HyperdistError, ValueError):
    """The objective returned a status that is not one of STATUS_STRINGS."""

    def __init__(self, result: object, message: str = "") -> None:
        super().__init__(message or f"result {result!r} has a status that is not one of STATUS_STRINGS")
        self.result = result


class InvalidLoss(HyperdistError, ValueError):
    """The objective returned status ok without a number as its loss."""

    def __init__(self, result: object, message: str = "") -> None:
        super().__init__(message or f"result {result!r} has status ok but no numeric loss")
        self.result = result


class InvalidAnnotatedParameter(HyperdistError, ValueError):
    """With `fmin(fn, space="annotated")`, an argument of fn is annotated with something not from hp."""

    def __init__(self, result: object, message: str = "") -> None:
        super().__init__(message or f"annotation {result!r} is not an hp expression")
        self.result = result


class StoreError(HyperdistError):
    """The database cannot be reached or holds something unexpected."""


class StoreUnavailable(StoreError):
    """The server did not answer (down, restarting, unreachable): retrying later may succeed."""


class ExperimentNotFound(StoreError):
    """No experiment has the given key."""


class ExperimentExists(StoreError):
    """An experiment with this key exists and resuming it was not asked for."""


class SpaceMismatch(StoreError):
    """The stored experiment was created with a different space."""


class CoordinatorBusy(StoreError):
    """Another coordinator holds an unexpired lease on the experiment."""


class LeaseLost(CoordinatorBusy):
    """Another coordinator took over this one's experiment (its lease ran out while it was stalled or
    cut off): it must write nothing more, and leaves the experiment to the new holder."""


class SearchNotRunning(StoreError):
    """A stop was asked of an experiment that no live coordinator is running."""


class SearchStopped(HyperdistError):
    """A search ended before its stop rules: asked to stop, or left without workers. The message
    says why and what to do; `exit_code` is what the command line exits with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ObjectiveError(HyperdistError):
    """An objective reference does not import, is not callable, or is not allowed."""


class ObjectiveNotAllowed(ObjectiveError):
    """The worker's allow list does not permit this objective."""


class ObjectiveMismatch(StoreError):
    """The stored experiment runs a different objective than the one given to resume it."""


# A URL's user information ends at the last '@' of the URL (a host never holds one), so a password
# holding '/', '@' or ':' (raw or percent-escaped) is covered in full; more hidden is safe.
_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<rest>[^\s'\"<>]*)")
_SECRET_PARAMS = re.compile(
    r"(?P<key>(password|tlsCertificateKeyFilePassword|authMechanismProperties)=)[^&\s'\"]*",
    re.IGNORECASE,
)


def _hide_user_info(m: re.Match) -> str:
    rest = m.group("rest")
    return m.group("scheme") + ("***@" + rest[rest.rindex("@") + 1:] if "@" in rest else rest)


def redact(text: str) -> str:
    """Replace a URL's user:password and secret query parameters with '***'."""
    text = str(text)
    if "://" in text:  # the patterns are slow to scan for (a traceback of 8000 characters: 0.3 ms);
        text = _URL.sub(_hide_user_info, text)  # a plain search for what each needs finds most text clean
    lower = text.lower()
    if "password=" in lower or "authmechanismproperties=" in lower:
        text = _SECRET_PARAMS.sub(lambda m: f"{m.group('key')}***", text)
    return text


# Terminal controls a stored string could carry to the operator's screen: C0 and C1 control
# characters (ESC starts colour, title, hyperlink and clipboard sequences), DEL, and the bidi
# overrides that make text read in another order than it runs.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters shown escaped (`\\x1b`), newlines and
    tabs kept. Everything a command prints from the database goes through it."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
