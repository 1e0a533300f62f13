"""The dashboard's JSON API and pages, served by `hyperdist dashboard`, on experiments made by real
searches (conditional space, failed and pruned trials), on the SecantusDB fixture."""
from __future__ import annotations

import socket
import threading
import time
import urllib.parse
import uuid

import pymongo
import pytest

from dashboard_support import dashboard, get, search
from hyperdist.space.compiled import space_from_json
from hyperdist.store import DONE, ERROR, Store
from hyperdist.store import testing as raw

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def searched(mongo_url, tmp_path_factory):
    """A finished 40-trial search; yields (url, db, store, the dashboard's base URL)."""
    db = f"t_{uuid.uuid4().hex[:10]}"
    search(mongo_url, db, "views", 40, tmp_path_factory.mktemp("logs"))
    store = Store(mongo_url, db=db)
    with dashboard(mongo_url, db) as base:
        yield mongo_url, db, store, base
    raw.client(store).drop_database(db)
    store.close()


def test_experiments_list_counts_and_best(searched):
    _, _, store, base = searched
    status, rows = get(base, "/api/experiments")
    assert status == 200 and [r["key"] for r in rows] == ["views"]
    row, history = rows[0], store.history("views")
    oks = [d for d in history if d["state"] == DONE and d["result"]["status"] == "ok"]
    assert row["finished"] == 40 and row["max_evals"] == 40 and row["state"] == "done"
    assert row["counts"]["failed"] == sum(d["state"] == ERROR for d in history) > 0
    assert row["counts"]["pruned"] == sum(d["result"]["status"] == "pruned" for d in history) > 0
    assert row["best_loss"] == pytest.approx(min(d["result"]["loss"] for d in oks))
    status, page = get(base, "/")
    assert status == 200 and "/static/plotly.min.js" in page and "id='experiments'" in page.replace('"', "'")


def test_experiment_payload_holds_every_view(searched):
    _, _, store, base = searched
    status, p = get(base, "/api/experiments/views")
    assert status == 200
    assert set(p["figures"]) == {"history", "importance", "slices", "parallel", "edf", "curves", "timeline"}
    history = store.history("views")
    oks = [d for d in history if d["state"] == DONE and d["result"]["status"] == "ok"]
    traces = {t["name"]: t for t in p["figures"]["history"]["data"]}
    assert len(traces["trial loss"]["x"]) == len(oks)
    assert sorted(traces["failed"]["x"]) == sorted(d["tid"] for d in history if d["state"] == ERROR)
    assert len(traces["pruned (last reported value)"]["x"]) == p["summary"]["counts"]["pruned"]
    assert traces["best so far"]["y"][-1] == pytest.approx(min(d["result"]["loss"] for d in oks))
    slices = p["figures"]["slices"]
    model = next(t for t in slices["data"] if t["name"] == "model")
    assert set(model["x"]) <= {"linear", "tree"}            # options by value, not index
    axes = {t["name"]: slices["layout"]["xaxis" + t["xaxis"][1:]] for t in slices["data"]}
    assert axes["lr"]["type"] == "log" and axes["model"]["type"] == "category"
    on_tree = sum(1 for d in oks if d["params"]["model"] == 1)
    assert f"({on_tree} of {len(oks)} inactive)" in axes["l2"]["title"]["text"]
    dims = {d["label"]: d for d in p["figures"]["parallel"]["data"][0]["dimensions"]}
    assert "inactive" in dims["l2"]["ticktext"] and dims["model"]["ticktext"] == ["linear", "tree"]
    assert p["figures"]["parallel"]["data"][0]["line"]["showscale"] is True
    assert p["figures"]["importance"]["data"][0]["y"]  # at least 8 ok trials, so importances exist
    assert len(p["rows"]) == 40 and {"ok", "pruned", "failed"} <= {r["kind"] for r in p["rows"]}
    assert all(r["params"]["model"] in ("linear", "tree") for r in p["rows"])
    assert [s["label"] for s in p["setup"]["space"]][:2] == ["lr", "model"]
    assert next(s for s in p["setup"]["space"] if s["label"] == "l2")["active"] == "model = linear"
    assert p["setup"]["options"]["pruner"]["name"] == "median" and len(p["setup"]["workers"]) == 2
    again = get(base, f"/api/experiments/views?since={p['version']}")[1]
    assert again["version"] == p["version"] and "figures" not in again and again["summary"] == p["summary"]


def test_trial_detail_has_configuration_result_and_traceback(searched):
    _, _, store, base = searched
    exp = store.get_experiment("views")
    failed = next(d for d in store.history("views") if d["state"] == ERROR)
    status, d = get(base, f"/api/experiments/views/trials/{failed['tid']}")
    assert status == 200 and d["kind"] == "failed"
    assert d["config"] == space_from_json(exp["space"]).eval(failed["params"])
    assert d["error"]["type"] == "ValueError" and "diverged" in d["error"]["traceback"]
    pruned = next(x for x in store.history("views") if x["result"]["status"] == "pruned")
    d = get(base, f"/api/experiments/views/trials/{pruned['tid']}")[1]
    assert d["result"]["status"] == "pruned" and len(d["intermediate"]) == len(pruned["intermediate"])


def test_contour_and_errors_are_one_line(searched):
    _, _, _, base = searched
    status, fig = get(base, "/api/experiments/views/contour?x=lr&y=l2")
    assert status == 200 and fig["data"][0]["type"] == "contour"
    assert any(v is not None for row in fig["data"][0]["z"] for v in row)
    fig = get(base, "/api/experiments/views/contour?x=lr&y=batch")[1]
    assert fig["data"][0]["type"] == "heatmap" and fig["layout"]["yaxis"]["ticktext"] == ["16", "64", "256"]
    status, body = get(base, "/api/experiments/views/contour?x=lr&y=nope")
    assert status == 400 and "no parameter 'nope'" in body["error"] and "lr, model" in body["error"]
    status, body = get(base, "/api/experiments/missing")
    assert status == 404 and body["error"] == f"no experiment 'missing' in database {searched[1]!r} (known: views)"
    assert get(base, "/api/experiments/views/trials/999")[0] == 404
    assert get(base, "/experiments/missing")[0] == 404


def test_only_loopback_names_are_answered(searched):
    _, _, _, base = searched
    assert get(base, "/api/experiments", {"Host": "attacker.example"})[0] == 400
    assert get(base, "/api/experiments", {"Host": "localhost"})[0] == 200


def test_a_dashboard_outlives_the_local_server_of_the_search_it_watched(tmp_path):
    """Opened during `hyperdist search` on the local data dir: the search stops its server at the end,
    and the dashboard starts it again for the next request instead of failing."""
    from hyperdist.server.embedded import server_status, stop_server

    running = search(None, "hyperdist", "local", 12, tmp_path, workers=1, delay=0.3, wait=False)
    try:
        deadline = time.monotonic() + 60
        while server_status(tmp_path) is None:
            assert running.poll() is None and time.monotonic() < deadline, running.communicate()[1]
            time.sleep(0.2)
        with dashboard(None, "hyperdist", "--data-dir", str(tmp_path)) as base:
            assert running.wait(120) == 0
            status, rows = get(base, "/api/experiments")
            assert status == 200 and rows[0]["finished"] == 12, rows
            assert get(base, "/api/experiments/local")[1]["summary"]["finished"] == 12
    finally:
        running.kill()
        running.communicate()
        stop_server(tmp_path)


class _Writes(pymongo.monitoring.CommandListener):
    WRITES = {"insert", "update", "delete", "findAndModify", "createIndexes", "drop", "dropIndexes", "create"}

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.reads = 0

    def started(self, event) -> None:
        self.reads += event.command_name in ("find", "aggregate", "getMore")
        if event.command_name in self.WRITES:
            self.seen.append(event.command_name)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def test_the_dashboard_never_writes_nor_shows_credentials(searched, store: Store):
    """Every route against a database whose trial carries a URL with a password in its error."""
    import uvicorn

    from hyperdist.views.dashboard import create_app

    mongo_url, db, real, _ = searched
    space = space_from_json(real.get_experiment("views")["space"])
    store.create_experiment("secret", space=space.to_json(), space_hash=space.hash, objective="m:f", algo={},
                            max_evals=1, seed=0)
    store.insert_trials("secret", [(0, real.history("views")[0]["params"])])
    doc = store.claim("w", 30, "secret")
    store.report(doc["_id"], doc["lease_token"], ERROR, {"status": "fail"},
                 {"type": "ConnectionError", "message": "mongodb://bob:hunter2@db:27017/x?password=hunter2",
                  "traceback": "at mongodb://bob:hunter2@db:27017"})
    hostile = "<script>alert(1)</script>"
    store.create_experiment(hostile, space=space.to_json(), space_hash=space.hash, objective=hostile, algo={},
                            max_evals=1, seed=0)
    listener = _Writes()
    viewer = Store(mongo_url, db=store.db_name, read_only=True, event_listeners=[listener])
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(viewer), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 20
    while get_safely(base) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    paths = ("/", "/experiments/secret", "/api/experiments", "/api/experiments/secret",
             "/api/experiments/secret/trials/0", "/api/experiments/secret/contour?x=lr&y=batch")
    bodies = [get(base, path)[1] for path in paths]
    text = repr(bodies)
    assert "hunter2" not in text and "bob:" not in text and "mongodb://***@db:27017" in text
    page = get(base, "/experiments/" + urllib.parse.quote(hostile, safe=""))[1]
    assert hostile not in page and "&lt;script&gt;" in page and "<\\/script>" in page  # text, never markup
    server.should_exit = True
    thread.join(10)
    viewer.close()
    assert listener.reads > 0 and listener.seen == []


def get_safely(base: str):
    try:
        return get(base, "/api/experiments")
    except OSError:
        return None


def test_crafted_trial_documents_are_drawn_around(searched, store: Store, tmp_path):
    """A choice index no option has, an infinite parameter, a NaN loss, a non-numeric step: every
    view still answers, and the report and the plots are still written."""
    from hyperdist.views import ExperimentView
    from hyperdist.views.pages import experiment_payload
    from hyperdist.views.plots import plot_all
    from hyperdist.views.report import report_html

    _, _, real, _ = searched
    exp = real.get_experiment("views")
    store.create_experiment("crafted", space=exp["space"], space_hash=exp["space_hash"], objective="m:f", algo={},
                            max_evals=4, seed=0)
    good = [d for d in real.history("views") if d["state"] == DONE][:3]
    store.insert_trials("crafted", [(i, d["params"]) for i, d in enumerate(good)])
    for d in good:
        doc = store.claim("w", 30, "crafted")
        store.report(doc["_id"], doc["lease_token"], DONE, {"status": "ok", "loss": d["result"]["loss"]})
    raw.trials(store).insert_many([
        {"exp_key": "crafted", "tid": 3, "state": DONE, "params": {"lr": float("inf"), "model": 9, "batch": -1},
         "result": {"status": "ok", "loss": 0.5}, "intermediate": {"1": 0.5, "x": "y"}},
        {"exp_key": "crafted", "tid": 4, "state": DONE, "params": {"lr": 0.1, "model": 0.5, "l2": 0.1},
         "result": {"status": "ok", "loss": float("nan")}}])
    view = ExperimentView.from_store(store, "crafted")
    payload = experiment_payload(view)
    assert [r["kind"] for r in payload["rows"]] == ["ok", "ok", "ok", "ok", "failed"]
    assert "crafted" in report_html(view) and len(plot_all(view, tmp_path)) >= 14
