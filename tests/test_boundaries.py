"""The decoders at hyperdist's boundaries, fuzzed: whatever a database, an objective or a command
line hands them, they answer with a value or hyperdist's own error, never a crash."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperdist import hp
from hyperdist.errors import HyperdistError, ObjectiveError, ObjectiveNotAllowed, SpaceError, redact
from hyperdist.objective.reference import AllowList, canonical, parse, same
from hyperdist.objective.result import MAX_DEPTH, UnstorableResult, plain
from hyperdist.space.compiled import compile_space, space_from_json
from hyperdist.store.history import valid_trials
from hyperdist.store.url import parse_url

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)
space_keys = st.sampled_from(["$hp", "$dict", "$tuple", "label", "args", "options", "format", "root", "x"])
space_like = st.recursive(
    json_values,
    lambda children: st.dictionaries(space_keys, children, max_size=4) | st.lists(children, max_size=3),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(space_like)
def test_any_document_is_a_space_or_a_space_error(doc):
    for candidate in (doc, {"format": "hyperdist.space/1", "root": doc}):
        try:
            space_from_json(candidate)
        except SpaceError:
            pass


def test_real_spaces_still_round_trip():
    space = compile_space({"m": hp.choice("m", [{"t": "a", "x": hp.uniform("x", 0, 1)}, ("b", 2)]),
                           "k": {1: hp.randint("k", 4)}})
    assert space_from_json(space.to_json()).hash == space.hash
    with pytest.raises(SpaceError):
        space_from_json({"format": "hyperdist.space/1", "root": {"$dict": 5}})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["tid", "state", "params", "result", "error", "intermediate", "x"]), json_values,
                       max_size=7))
def test_readers_keep_only_documents_they_can_trust(doc):
    docs = list(valid_trials([doc], "e"))
    for d in docs:
        assert isinstance(d["tid"], int) and d["state"] in ("NEW", "RUNNING", "DONE", "ERROR")
        assert isinstance(d["params"], dict) and all(isinstance(v, (int, float)) for v in d["params"].values())
        assert d.get("result") is None or isinstance(d["result"], dict)
        assert all(k.isdigit() and isinstance(v, (int, float)) for k, v in (d.get("intermediate") or {}).items())
        loss = (d.get("result") or {}).get("loss")
        assert loss is None or isinstance(loss, (int, float))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_a_result_is_plain_or_unstorable(value):
    try:
        out = plain({"loss": 1.0, "extra": value})
    except UnstorableResult as exc:
        assert str(exc).startswith("result")
    else:
        assert out["loss"] == 1.0


def test_unstorable_values_are_named_by_their_path():
    cycle: dict = {}
    cycle["me"] = cycle
    deep: list = []
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node.append([])
        node = node[0]
    cases = {"result.extra.n": {"extra": {"n": 2**70}}, "result.a[1]": {"a": [1, -(2**64)]},
             "result.me": cycle, "nested more than": {"d": deep}, "result.s": {"s": "\udcff"},
             "'$set'": {"$set": 1}, "result.o": {"o": object()}}
    for needle, value in cases.items():
        with pytest.raises(UnstorableResult, match=needle.replace("[", r"\[").replace("$", r"\$")):
            plain(value)
    assert plain({"i": 2**63 - 1, "f": math.inf}) == {"i": 2**63 - 1, "f": math.inf}


@pytest.mark.parametrize("url", [
    "mongodb://alice:pa/ss@db:27017/x", "mongodb://alice:p@ss@db:27017/x", "mongodb://alice:p%40ss%2Fw@db/x",
    "mongodb+srv://alice:pa:ss@cluster.example/x?tls=true", "mongodb://db/x?password=pass&authSource=admin",
])
def test_every_password_form_is_redacted(url):
    for text in (url, f"error: cannot reach '{url}' now", f"url={url}\nnext line"):
        shown = redact(text)
        assert "pa/ss" not in shown and "p@ss" not in shown and "p%40ss" not in shown and "pa:ss" not in shown
        assert "=pass" not in shown and "***" in shown
    assert redact("mongodb://db:27017/x failed") == "mongodb://db:27017/x failed"


def test_url_errors_never_echo_the_url():
    for url in ("alice:secret@db:27017", "http://alice:secret@db", "mongodb://[::1"):
        with pytest.raises(HyperdistError) as err:
            parse_url(url)
        assert "secret" not in str(err.value)
    assert parse_url("mongo://db:1/tuning/jobs") == ("mongodb://db:1", "tuning")


def test_references_name_one_function_in_one_module_or_file():
    for bad in ("mod:os.system", "mod", "mod:", ":f", "dir/file.txt:f", "a b:f", "m:__import__('os')", 5, None):
        with pytest.raises(ObjectiveError):
            parse(bad)
    assert str(parse("pkg.mod:fn")) == "pkg.mod:fn" and parse("dir/f.py:fn").is_file


def test_file_references_are_stored_relative_to_the_project(tmp_path):
    (tmp_path / "sub").mkdir()
    assert canonical("sub/obj.py:f", tmp_path) == "sub/obj.py:f"
    assert canonical(f"{tmp_path}/sub/obj.py:f", tmp_path) == "sub/obj.py:f"
    assert canonical("/elsewhere/obj.py:f", tmp_path) == "/elsewhere/obj.py:f"
    assert canonical("pkg.mod:f", tmp_path) == "pkg.mod:f"
    assert same("sub/obj.py:f", f"{tmp_path}/sub/obj.py:f", tmp_path) and not same("a:f", "a:g")


def test_allow_entries_are_never_split_on_white_space(tmp_path):
    project = tmp_path / "my project"
    project.mkdir()
    (project / "obj.py").write_text("def f(c):\n    return 0.0\n")
    allow = AllowList.from_options([f"{project}/obj.py", f"other.py{os.pathsep}pkg.mod:f"], cwd=tmp_path)
    assert allow.entries == [f"{project}/obj.py", "other.py", "pkg.mod:f"]
    assert allow.may_import(parse("obj.py:f"), project) and not allow.may_import(parse("obj.py:_f"), project)
    assert allow.exact(parse("pkg.mod:f"), project) and not allow.may_import(parse("pkg.mod:g"), project)
    # where ':' is the separator, 'X:name' is read as one exact reference: the narrower reading
    assert AllowList.from_options(["a.py:f:b.py"], cwd=tmp_path).entries == ["a.py:f", "b.py"]
    with pytest.raises(ObjectiveError):
        AllowList(["not a module"], cwd=tmp_path)


def test_a_relative_reference_resolves_against_the_workers_directory(tmp_path):
    from hyperdist.objective.reference import load_objective

    (tmp_path / "obj.py").write_text("def f(c):\n    return 1.5\n")
    fn = load_objective("obj.py:f", AllowList(["obj.py"], cwd=tmp_path), tmp_path)
    assert fn({}) == 1.5
    with pytest.raises(ObjectiveError, match="--path"):
        load_objective("obj.py:f", AllowList([str(tmp_path)]), Path(tmp_path / "nowhere"))


@pytest.mark.parametrize("entry", ["{d}/obj.py", "{d}/obj.py:f", "{d}"])
def test_a_worker_looking_for_the_file_in_the_wrong_place_is_told_which_path_not_refused(tmp_path, entry):
    """Found by a new user: a worker started in another directory, with the file allowed by its
    full path but no --path, was told the objective 'is not allowed' and to fix --allow."""
    from hyperdist.objective.reference import load_objective

    project, elsewhere = tmp_path / "project", tmp_path / "empty"
    project.mkdir()
    elsewhere.mkdir()
    (project / "obj.py").write_text("def f(c):\n    return 1.5\n")
    allow = AllowList([entry.format(d=project)], cwd=elsewhere)
    with pytest.raises(ObjectiveError) as err:
        load_objective("obj.py:f", allow, elsewhere)
    assert not isinstance(err.value, ObjectiveNotAllowed)
    assert str(err.value) == (f"objective file '{elsewhere}/obj.py' (from 'obj.py:f') does not exist; relative "
                              f"references resolve against '{elsewhere}': pass --path {project} (where the allowed "
                              f"'{project}/obj.py' is)")
    assert load_objective("obj.py:f", allow, project)({}) == 1.5
    # any other missing file is refused as before: the refusal tells nothing of what exists here
    with pytest.raises(ObjectiveNotAllowed):
        load_objective(f"{tmp_path}/nowhere/obj.py:f", allow, elsewhere)
    with pytest.raises(ObjectiveNotAllowed):
        load_objective("other.py:f", allow, elsewhere)
    with pytest.raises(ObjectiveNotAllowed):  # a file that is there and not allowed is still refused
        (elsewhere / "obj.py").write_text("def f(c):\n    return 0\n")
        load_objective("obj.py:f", allow, elsewhere)


def test_a_file_entry_permits_the_module_that_file_is(tmp_path, monkeypatch):
    """`--allow mysearch.py` with an objective imported as `mysearch:objective` (the README's
    MongoTrials example): the module is found, without running it, to be the allowed file. A module
    found elsewhere stays refused, and is not run."""
    from hyperdist.objective.reference import load_objective

    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "hd_allowed_search.py").write_text("def objective(p):\n    return 2.5\n")
    (tmp_path / "hd_other_search.py").write_text("open(__file__ + '.ran', 'w').close()\n"
                                                 "def objective(p):\n    return 0\n")
    (tmp_path / "json.py").write_text("def loads(p):\n    return 0\n")
    try:
        allow = AllowList(["hd_allowed_search.py", "json.py"], cwd=tmp_path)
        assert load_objective("hd_allowed_search:objective", allow, tmp_path)({}) == 2.5
        with pytest.raises(ObjectiveNotAllowed):
            load_objective("hd_other_search:objective", allow, tmp_path)
        assert not (tmp_path / "hd_other_search.py.ran").exists()
        with pytest.raises(ObjectiveNotAllowed):  # `json` imports the standard library's, not the allowed json.py
            load_objective("json:loads", allow, tmp_path)
    finally:
        sys.modules.pop("hd_allowed_search", None)


@pytest.mark.parametrize("text", ["\x1b]0;title\x07 cleared", "\x1b]52;c;cHduZWQ=\x07", "\x1b[2J\x9b31m",
                                  "abc\u202edcba", "bell\x07\x00nul\x7f"])
def test_stored_text_reaches_a_terminal_without_its_controls(text):
    from hyperdist.errors import printable

    shown = printable(text)
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7f <= ord(c) <= 0x9f or 0x202a <= ord(c) <= 0x202e
                   for c in shown), repr(shown)
    assert printable("a line\n\tindented: ünïcode ok") == "a line\n\tindented: ünïcode ok"


@pytest.mark.parametrize("option", ["tls=maybe", "tls=ture", "authMechanism=BOGUS"])
def test_a_url_option_pymongo_would_ignore_is_refused(option):
    """pymongo ignores an option it cannot use with a warning: tls=ture would connect without TLS."""
    from hyperdist.errors import StoreError
    from hyperdist.store import Store

    with pytest.raises(StoreError, match="invalid MongoDB URL .*fix or remove the option") as refused:
        Store(f"mongodb://alice:pw-s3cret@127.0.0.1:1/?{option}", timeout_ms=200)
    assert "pw-s3cret" not in str(refused.value)


def test_an_ok_result_without_a_loss_names_its_keys():
    """Found by a new user: `{"status": "ok", "acc": 0.9}` was reported as 'loss is None'."""
    from hyperdist.objective.result import normalize

    result, error = normalize({"status": "ok", "acc": 0.9})
    assert result["status"] == "fail" and error["type"] == "InvalidLoss"
    assert error["message"] == ("status is 'ok' but the result has no 'loss' (its keys: 'status', 'acc'); "
                                "expected a finite number under 'loss'")
    assert normalize({"status": "ok", "loss": None})[1]["message"] == ("status is 'ok' but loss is None; "
                                                                       "expected a finite number")
