"""Reads of an experiment's trials: what the coordinator, resume, status and export see."""
from __future__ import annotations

import logging
import math
import re
import shlex
from typing import Any, Iterable, Iterator

from pymongo import DESCENDING

from hyperdist.errors import StoreError, redact
from hyperdist.store.connection import Database
from hyperdist.store.document import FINISHED, HISTORY_FIELDS, STATES, TRIAL_FIELDS, TrialRecord, TrialState, trial_key
from hyperdist.store.picks import key

log = logging.getLogger("hyperdist.store")
_NUMBERS = re.compile(r"0x[0-9a-f]+|[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)  # addresses too
NEW, RUNNING, DONE, ERROR = TrialState.NEW, TrialState.RUNNING, TrialState.DONE, TrialState.ERROR
_PRUNED = "pruned"
UNREAD_SPAN = 1024  # tids looked for past the highest one a resume read (History.unread_trials)
UNREAD_KEYS = 4096  # tids looked for in all
UNREAD_CHUNK = 128  # `_id`s per read: SecantusDB's time for an `$in` grows with the square of its length


class History(Database):
    """Reads only: none of these changes a trial."""

    def count_new(self, exp_key: str) -> int:
        """How many trials wait to be claimed: one number through the claim index (SecantusDB's
        `count` command scans the whole collection instead; docs/store-notes.md)."""
        with self._errors("reading from"):
            return self._trials.count_documents({"exp_key": exp_key, "state": NEW})

    def open_trials(self, exp_key: str) -> list[dict]:
        with self._errors("reading from"):
            return list(self._trials.find({"exp_key": exp_key, "state": {"$in": [NEW, RUNNING]}}, HISTORY_FIELDS))

    def finished_among(self, exp_key: str, ids: list, tids: list[int] | None = None) -> list[dict]:
        """The trials among `ids` that have finished; a tid or field damaged since is the caller's
        to replace (it knows the tids of the trials it inserted).

        Given the trials' `tids`, when there are 16 or more and they lie close together (a queue of
        short trials), the finished ones are read through the claim index by state and tid range,
        one read per final state, and those not among `ids` dropped here: SecantusDB matches an
        `_id` `$in` in time that grows with the square of the list (server CPU for 80 open trials
        6.9 ms, against 1.5 ms for the two range reads; for 6, 0.6 against 0.7 ms;
        benchmarks/results/server_costs_in_lists.md). A range over state `$in` scans."""
        fields = dict(TRIAL_FIELDS, batch=1)  # batch: claimed with how many
        tids = tids or []
        with self._errors("reading from"):
            if len(tids) >= 16 and max(tids) - min(tids) < 2 * len(tids) + 16:
                wanted = {key({"_id": i}) for i in ids}
                found = self._by_state(exp_key, fields, {"$gte": min(tids), "$lte": max(tids)}, FINISHED)
                docs = [d for k, d in found.items() if k in wanted]
            else:
                docs = list(self._trials.find({"_id": {"$in": ids}, "state": {"$in": list(FINISHED)}}, fields))
        return [_clean_fields(d) for d in docs]

    def records_by_id(self, exp_key: str, ids: list) -> list[TrialRecord]:
        """Whole trials by `_id`: what a tracker logs of the trials the coordinator saw finish."""
        with self._errors("reading from"):
            docs = list(self._trials.find({"_id": {"$in": ids}}, HISTORY_FIELDS))
        return [TrialRecord.from_doc(d) for d in valid_trials(docs, exp_key)]

    def existing(self, ids: list) -> set:
        """Which of these trial _ids still exist (a server that lost recent writes may not have them)."""
        with self._errors("reading from"):
            return {d["_id"] for d in self._trials.find({"_id": {"$in": ids}}, {"_id": 1})}

    def history(self, exp_key: str) -> list[dict]:
        docs = list(self.iter_history(exp_key))
        docs.sort(key=lambda d: d["tid"])
        return docs

    def records(self, exp_key: str) -> list[TrialRecord]:
        """Every trial of an experiment as typed records, in tid order: what views and commands read."""
        return [TrialRecord.from_doc(d) for d in self.history(exp_key)]

    def iter_history(self, exp_key: str, fields: dict | None = None) -> Iterator[dict]:
        """Every trial of an experiment, streamed in no particular order; `fields` narrows what is
        read, so a resume of 100 000 trials never holds their results' extras (measured in
        docs/performance.md)."""
        with self._errors("reading from"):
            yield from valid_trials(self._trials.find({"exp_key": exp_key}, fields or HISTORY_FIELDS).batch_size(5000),
                                    exp_key)

    def _by_state(self, exp_key: str, fields: dict, tids: dict | None = None, states: Iterable[str] = STATES,
                  newest: int | None = None, **query: Any) -> dict[str, dict]:
        """The trials whose tid matches `tids` (a range), through the claim index, one read per state
        (a `state` `$in` beside a tid range scans on SecantusDB); with `newest`, at most that many
        of the highest tids of each state. A trial that moves on between two reads (a worker claims
        or finishes it) is read twice, and kept once as the later read saw it; one a worker hands
        back between them (RUNNING, then NEW) is read by neither (`unread_trials`). Keyed by `key`."""
        docs: dict[str, dict] = {}
        for state in states:
            where = {"exp_key": exp_key, "state": state, **({"tid": tids} if tids else {}), **query}
            cursor = self._trials.find(where, fields)
            docs.update((key(d), d) for d in (cursor.sort("tid", DESCENDING).limit(newest) if newest else cursor))
        return docs

    def trials_since(self, exp_key: str, tid: int, ids: list, fields: dict) -> list[dict]:
        """The trials a snapshot leaves out: those above its watermark `tid`, by state and tid range,
        and those open when it was taken (`ids`)."""
        with self._errors("reading from"):
            docs = list(self._by_state(exp_key, fields, {"$gt": tid}).values())
            if ids:
                docs += self._trials.find({"_id": {"$in": ids}, "exp_key": exp_key, "tid": {"$lte": tid}}, fields)
        return list(valid_trials(docs, exp_key))

    def unread_trials(self, exp_key: str, above: int, read: set[int], fields: dict) -> list[dict]:
        """The trials with a tid above `above` that are not in `read`: those a read of the history
        missed because they changed state while it ran. Read by `_id` (document.trial_key), which
        no change of state moves, for the tids the experiment's counter handed out that are not in
        `read` (most were reserved and never used), from the highest down, since a missed trial was
        one of the last ones open: at most UNREAD_SPAN past the highest tid read and UNREAD_KEYS in
        all, so a counter or a tid someone set to 10**12 costs no more than that."""
        with self._errors("reading from"):
            exp = self._experiments.find_one({"_id": exp_key}, {"next_tid": 1}) or {}
            end = exp.get("next_tid")
            if isinstance(end, bool) or not isinstance(end, int):
                return []
            tid = min(end, max(read, default=above) + 1 + UNREAD_SPAN) - 1
            keys: list[str] = []
            while tid > above and len(keys) < UNREAD_KEYS:
                if tid not in read:
                    keys.append(trial_key(exp_key, tid))
                tid -= 1
            docs = [d for start in range(0, len(keys), UNREAD_CHUNK)
                    for d in self._trials.find({"_id": {"$in": keys[start:start + UNREAD_CHUNK]}, "exp_key": exp_key},
                                               fields)]
        return list(valid_trials(docs, exp_key))

    def counts(self, exp_key: str) -> dict[TrialState, int]:
        out = dict.fromkeys((NEW, RUNNING, DONE, ERROR), 0)
        with self._errors("reading from"):
            for row in self._trials.aggregate([{"$match": {"exp_key": exp_key}},
                                               {"$group": {"_id": "$state", "n": {"$sum": 1}}}]):
                if row["_id"] in STATES:  # a state written by something else is not a trial's
                    out[row["_id"]] = row["n"]
        return out

    def running_trials(self, exp_key: str) -> list[dict]:
        with self._errors("reading from"):
            return list(self._trials.find({"exp_key": exp_key, "state": RUNNING},
                                          {"tid": 1, "owner": 1, "claimed": 1, "lease_until": 1, "heartbeat": 1,
                                                                     "device": 1}))

    def find_trials(self, exp_key: str, state: TrialState | None = None, limit: int | None = None,
                    pruned: bool | None = None) -> list[TrialRecord]:
        """Trials in tid order, optionally of one state, and pruned or not (a pruned trial is a done
        one whose result says "pruned"); with `limit`, the last (most recent) ones, read newest first
        through the claim index, one read per state."""
        query: dict = {}
        if pruned is not None:
            query["result.status"] = "pruned" if pruned else {"$ne": "pruned"}
        with self._errors("reading from"):
            found = self._by_state(exp_key, HISTORY_FIELDS, None, [TrialState(state).value] if state else STATES,
                                   limit, **query)
        docs = sorted(valid_trials(found.values(), exp_key), key=lambda d: d["tid"])
        return [TrialRecord.from_doc(d) for d in (docs[-limit:] if limit else docs)]

    def get_trial(self, exp_key: str, tid: int) -> TrialRecord:
        """One trial, for `hyperdist show`."""
        with self._errors("reading from"):
            raw = self._trials.find_one({"_id": trial_key(exp_key, tid)}, {"lease_token": 0})
            if raw is None or raw.get("exp_key") != exp_key or raw.get("tid") != tid:  # stored otherwise (by hand)
                raw = self._trials.find_one({"exp_key": exp_key, "tid": tid}, {"lease_token": 0})
            if raw is None:
                last = max(self._by_state(exp_key, {"tid": 1}, newest=1).values(),
                           key=lambda d: d["tid"] if isinstance(d.get("tid"), int) else -1, default=None)
        if raw is None:
            # ids are reserved in blocks, so a stopped coordinator leaves ids that no trial ever had
            known = (f"its trial ids go up to {last['tid']}, with gaps where reserved ids were never used; "
                     f"`hyperdist trials {shlex.quote(exp_key)}` lists them") if last else "it has no trials yet"
            raise StoreError(f"experiment {exp_key!r} has no trial {tid} ({known})")
        found = list(valid_trials([raw], exp_key))
        if not found:
            raise StoreError(f"trial {tid} of {exp_key!r} is stored with the state {_short(raw.get('state'))}, "
                             f"not one of {sorted(STATES)}: someone wrote it outside hyperdist")
        return TrialRecord.from_doc(found[0])

    def outcome_counts(self, exp_key: str, exclude: list | None = None) -> dict[str, int]:
        """Finished trials as ok / failed / pruned (a trial of `exclude` is left out: the coordinator
        counts those itself when it sees them finish). One `$group`: for a start, not for a tick."""
        match: dict[str, Any] = {"exp_key": exp_key, "state": {"$in": list(FINISHED)}}
        if exclude:
            match["_id"] = {"$nin": list(exclude)}
        out = {"ok": 0, "failed": 0, "pruned": 0}
        with self._errors("reading from"):
            for row in self._trials.aggregate([{"$match": match}, {"$group": {
                    "_id": {"state": "$state", "status": "$result.status"}, "n": {"$sum": 1}}}]):
                out[outcome(row["_id"].get("state"), row["_id"].get("status"))] += row["n"]
        return out

    def top_errors(self, exp_key: str, n: int = 3) -> list[tuple[int, str]]:
        """The most frequent error messages of failed trials, as (count, 'Type: message')."""
        with self._errors("reading from"):
            rows = list(self._trials.aggregate([
                {"$match": {"exp_key": exp_key, "state": ERROR}},
                {"$group": {"_id": {"type": "$error.type", "message": "$error.message",
                                    "failure": "$result.failure"}, "n": {"$sum": 1}}}]))
        # messages that differ only in their numbers ("bad x=0.53", "bad x=0.71") are one error
        groups: dict[str, list] = {}
        for r in sorted(rows, key=lambda r: -r["n"]):
            text = error_text(r["_id"])
            group = groups.setdefault(_NUMBERS.sub("#", text), [0, text, 0])
            group[0] += r["n"]
            group[2] += 1
        top = sorted(groups.values(), key=lambda g: -g[0])[:n]
        return [(count, text if kinds == 1 else _noting(text, f" (and {kinds - 1} like it with other numbers)"))
                for count, text, kinds in top]

    def last_error(self, exp_key: str) -> TrialRecord | None:
        """The failed trial with the highest tid (through the claim index): tid, owner, error."""
        with self._errors("reading from"):
            doc = self._trials.find_one({"exp_key": exp_key, "state": ERROR},
                                        {"tid": 1, "state": 1, "owner": 1, "error": 1, "result.failure": 1},
                                        sort=[("tid", -1)])
        found = next(valid_trials([doc], exp_key), None) if doc else None
        return TrialRecord.from_doc(found) if found else None

    def recent_trials(self, exp_key: str, above_tid: int) -> list[dict]:
        """Who claimed, ran and finished the trials above `above_tid`: tid ranges through the claim
        index, cheap whatever the size of the history (docs/store-notes.md)."""
        with self._errors("reading from"):
            return list(self._by_state(exp_key, {"tid": 1, "state": 1, "owner": 1, "claimed": 1, "heartbeat": 1,
                                                 "finished": 1, "attempts": 1}, {"$gt": above_tid}).values())


def outcome(state: str | None, status: str | None) -> str:
    """ok, failed or pruned: how a finished trial is counted in progress and summaries."""
    if state == DONE and status == _PRUNED:
        return "pruned"
    return "ok" if state == DONE and status == "ok" else "failed"


def error_text(key: dict) -> str:
    """A failed trial's error as text, from its error's type and message, else its result's failure:
    the same words in the search summary, `status`, `trials`, exports and the worker's log,
    credentials redacted. An empty message (`assert x`, MemoryError) leaves the type alone."""
    if key.get("message") is not None:
        kind = key.get("type") or "Error"
        return redact(f"{kind}: {key['message']}" if str(key["message"]).strip() else kind)
    return redact(key.get("failure") or "returned status 'fail'")


def trial_error_text(error: dict | None, result: dict | None) -> str:
    """`error_text` of one trial's stored error and result."""
    error = error if isinstance(error, dict) else {}
    return error_text({"type": error.get("type"), "message": error.get("message"),
                       "failure": (result if isinstance(result, dict) else {}).get("failure")})


def valid_trials(docs: Iterable[dict], exp_key: str) -> Iterator[dict]:
    """The trial documents readers can trust: an integer tid and a known state, with params,
    result and error of the right types (anyone who can write the database can write a trial).
    The others are left out with one warning per read."""
    skipped = 0
    for doc in docs:
        tid = doc.get("tid")
        if isinstance(tid, bool) or not isinstance(tid, int) or not isinstance(doc.get("state"), str) \
                or doc["state"] not in STATES:
            skipped += 1
            continue
        yield _clean_fields(doc)
    if skipped:
        log.warning("experiment %r: %d trial document(s) without an integer tid or a known state were left out",
                    exp_key, skipped)


def _noting(text: str, note: str) -> str:
    """The note at the end of the text's first line, where one-line views cut it."""
    first, _, rest = text.partition("\n")
    return first + note + ("\n" + rest if rest else "")


def _clean_fields(doc: dict) -> dict:
    """params and intermediate values: numbers only (steps keyed by integers); result: a dict whose
    loss is a number or None; error: a dict, its text and the result's failure with credentials
    redacted (a trial stored before errors were redacted, or written by anyone, may hold them);
    a result and an error not written yet (document.new_trial), as None."""
    doc.setdefault("result", None)
    doc.setdefault("error", None)
    params = doc.get("params")
    doc["params"] = {k: v for k, v in params.items() if _number(v) and math.isfinite(v)} \
        if isinstance(params, dict) else {}
    result = doc.get("result")
    if result is not None:
        if not isinstance(result, dict):
            result = {"status": "fail"}
        elif "loss" in result and not _number(result["loss"]):
            result = dict(result, loss=None)
        if not isinstance(result.get("status", ""), str):
            result = dict(result, status="fail")
        if isinstance(result.get("failure"), str):
            result = dict(result, failure=redact(result["failure"]))
        doc["result"] = result
    steps = doc.get("intermediate")
    if steps is not None:
        doc["intermediate"] = ({k: v for k, v in steps.items() if k.isdigit() and _number(v)}
                               if isinstance(steps, dict) else {})
    error = doc.get("error")
    if error is not None and not isinstance(error, dict):
        error = {"type": "InvalidDocument", "message": str(error)[:500]}
    if error is not None:
        doc["error"] = {k: redact(v) if isinstance(v, str) else v for k, v in error.items()}
    return doc


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def trial_problem(doc: dict) -> str:
    """What makes a claimed trial document unusable to a worker, or '' (anyone may have written it)."""
    if not isinstance(doc.get("exp_key"), str):
        return f"exp_key {_short(doc.get('exp_key'))} is not a string"
    if isinstance(doc.get("tid"), bool) or not isinstance(doc.get("tid"), int):
        return f"tid {_short(doc.get('tid'))} is not an integer"
    if not isinstance(doc.get("params"), dict):
        return f"params {_short(doc.get('params'))} is not a document of parameter values"
    if doc.get("space_hash") is not None and not isinstance(doc.get("space_hash"), str):
        return f"space_hash {_short(doc.get('space_hash'))} is not a string"
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
