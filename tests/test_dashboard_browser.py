"""The dashboard and the report in headless Chromium (Debian's package), driven over the DevTools
protocol by playwright: every plot renders without a console error, and a trial that finishes while
the page is open shows up without a reload.

Screenshots go to the test's tmp dir; with HYPERDIST_SCREENSHOTS=DIR they are also written there
(docs/img/ holds the ones docs/dashboard.md shows).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from dashboard_support import dashboard, search
from hyperdist.store import Store
from hyperdist.store import testing as raw
from harness import worker_env

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PLOTS = ("history", "importance", "slices", "parallel", "contour", "edf", "curves", "timeline")


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian package 'chromium')")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the Python package only)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        yield b
        b.close()


def _page(browser, errors: list[str]):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(20_000)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def _shoot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("HYPERDIST_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return shot


def _all_plots_drawn(page) -> None:
    for name in PLOTS:
        page.wait_for_selector(f"#fig-{name}[data-rendered]")
        assert page.locator(f"#fig-{name} .main-svg").count() >= 1, f"{name}: no plot drawn"
    assert page.locator("#fig-parallel .parcoords").count() == 1
    assert page.locator("#fig-contour .scatterlayer .point").count() >= 3
    assert page.locator("#fig-history .scatterlayer .trace").count() >= 3


def _finished_rows(page) -> set[int]:
    cells = page.locator("#trial-table tbody tr").evaluate_all(
        "rows => rows.filter(r => /^(ok|pruned|failed)/.test(r.cells[1].textContent)).map(r => +r.dataset.tid)")
    return set(cells)


def test_live_dashboard_in_chromium(browser, mongo_url, tmp_path):
    """A search running while the page is open: plots drawn, and new trials appear without a reload."""
    db = f"t_{uuid.uuid4().hex[:10]}"
    running = search(mongo_url, db, "live", 60, tmp_path, workers=1, delay=0.6, wait=False)
    store = Store(mongo_url, db=db)
    try:
        deadline = time.monotonic() + 60
        while _finished(store) < 12:
            assert running.poll() is None and time.monotonic() < deadline, "the search did not get going"
            time.sleep(0.3)
        started = time.monotonic()
        errors: list[str] = []
        with dashboard(mongo_url, db) as base:
            page = _page(browser, errors)
            page.goto(base + "/")
            page.wait_for_selector("#experiments tbody tr[data-key='live']")
            assert "live" in page.inner_text("#experiments") and not page.is_visible("#error")
            _shoot(page, tmp_path, "dashboard-experiments")
            page.goto(base + "/experiments/live")
            _all_plots_drawn(page)
            before = _finished_rows(page)
            assert before and page.locator("#space tbody tr").count() == 6
            page.locator("#trial-table tbody tr").first.click()
            page.wait_for_selector("#detail pre")
            page.wait_for_function(f"document.querySelectorAll('#trial-table tbody tr').length > 0 && "
                                   f"[...document.querySelectorAll('#trial-table tbody tr')].filter(r => "
                                   f"/^(ok|pruned|failed)/.test(r.cells[1].textContent)).length > {len(before)}",
                                   timeout=30_000)
            after = _finished_rows(page)
            assert after - before, "no trial finished after the page opened showed up"
            assert int(page.locator("#fig-history").get_attribute("data-rendered")) >= 2  # redrawn, not reloaded
            page.select_option("#filter-state", "pruned")
            shown = page.locator("#trial-table tbody tr").count()
            assert shown == page.locator("#trial-table tbody td.k-pruned").count()
            page.select_option("#filter-state", "")
            _shoot(page, tmp_path, "dashboard-experiment")
            assert errors == [], errors
            assert time.monotonic() - started < 60
    finally:
        running.terminate()
        running.communicate(timeout=60)
        raw.client(store).drop_database(db)
        store.close()


def _finished(store: Store) -> int:
    if not any(e["_id"] == "live" for e in store.list_experiments()):
        return 0
    counts = store.counts("live")
    return counts["DONE"] + counts["ERROR"]


MARKUP = '''from hyperdist import hp
space = {"a": hp.uniform('<a href="https://evil.example/login">SESSION EXPIRED</a>', 0, 1),
         "b": hp.choice("b", ["<b><i>big</i></b><br>line2", "x & y"])}
def objective(cfg):
    if cfg["a"] > 0.85:
        raise ValueError('<a href="https://evil.example/x">details</a>')
    return cfg["a"] + (0.1 if cfg["b"] == "x & y" else 0.0)
'''


def test_markup_from_the_database_is_drawn_as_text(browser, mongo_url, tmp_path):
    """Labels, options and errors holding plotly's pseudo-HTML (<a href>, <b>, <br>) show as the
    characters they are, in the dashboard and the report: no link, no bold, no line break."""
    db = f"t_{uuid.uuid4().hex[:10]}"
    (tmp_path / "markup.py").write_text(MARKUP)
    run = subprocess.run([sys.executable, "-m", "hyperdist", "search", "markup.py:objective", "--space",
                          "markup.py:space", "--max-evals", "24", "--workers", "1", "--exp", "markup", "--mongo",
                          mongo_url, "--db", db, "--no-progress"], cwd=tmp_path, env=worker_env(),
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0 and "ValueError" in run.stderr, run.stderr
    report = tmp_path / "report.html"
    made = subprocess.run([sys.executable, "-m", "hyperdist", "report", "markup", "--out", str(report), "--mongo",
                           mongo_url, "--db", db], env=worker_env(), capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    errors: list[str] = []
    try:
        with dashboard(mongo_url, db) as base:
            for where in (base + "/experiments/markup", report.as_uri()):
                page = _page(browser, errors)
                page.goto(where)
                _all_plots_drawn(page)
                drawn = page.locator(".main-svg")
                assert page.locator(".main-svg a").count() == 0, where  # plotly makes <a> of <a href>
                assert page.locator(".main-svg tspan[style*='bold'], .main-svg tspan[style*='italic']").count() == 0
                texts = drawn.evaluate_all("svgs => svgs.flatMap(s => [...s.querySelectorAll('text')])"
                                           ".map(t => t.textContent)")
                assert any(t.startswith('<a href="https://evil.example/login">') for t in texts), texts
                assert "<b><i>big</i></b><br>line2" in texts and "x & y" in texts, texts
                ticks = page.locator("#fig-parallel .tick text").all_text_contents()  # plotly's plain text
                assert "x & y" in ticks and not any("&amp;" in t or "&lt;" in t for t in ticks), ticks
                page.locator("#fig-slices .scatterlayer .point").first.hover(force=True)  # plotly hovers by position
                page.wait_for_selector("#fig-slices .hoverlayer .hovertext")
                hover = page.locator("#fig-slices .hoverlayer .hovertext").first.text_content()
                assert hover.startswith('<a href="https://evil.example/login">') and "loss" in hover, hover
                assert page.locator(".main-svg a").count() == 0
                _shoot(page, tmp_path, f"markup-{'report' if where.startswith('file:') else 'dashboard'}")
                page.close()
        assert errors == [], errors
    finally:
        store = Store(mongo_url, db=db)
        raw.client(store).drop_database(db)
        store.close()


def test_report_works_offline_in_chromium(browser, mongo_url, tmp_path):
    """`hyperdist report` writes one file that draws every view with the network cut off."""
    db = f"t_{uuid.uuid4().hex[:10]}"
    search(mongo_url, db, "views", 40, tmp_path)
    report = tmp_path / "report.html"
    run = subprocess.run([sys.executable, "-m", "hyperdist", "report", "views", "--out", str(report), "--mongo",
                          mongo_url, "--db", db], env=worker_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    text = report.read_text()
    assert "src=" not in text.split("window.HD_EMBED")[0].split("<script>")[0] and "HD_EMBED" in text
    errors: list[str] = []
    page = _page(browser, errors)
    fetched: list[str] = []

    def refuse(route) -> None:
        if not route.request.url.startswith("file:"):
            fetched.append(route.request.url)
            route.abort()
        else:
            route.continue_()
    page.route("**/*", refuse)
    page.goto(report.as_uri())
    _all_plots_drawn(page)
    assert page.locator("#trial-table tbody tr").count() == 40
    failed = page.locator("#trial-table tbody tr", has=page.locator("td.k-failed")).first
    failed.click()
    page.wait_for_selector("#detail pre")
    assert "diverged" in page.inner_text("#detail")
    page.select_option("#contour-pair", index=1)
    page.wait_for_function("+document.querySelector('#fig-contour').dataset.rendered >= 2")
    _shoot(page, tmp_path, "report")
    assert errors == [] and fetched == []
    store = Store(mongo_url, db=db)
    raw.client(store).drop_database(db)
    store.close()


def test_keys_with_url_special_characters_round_trip_in_chromium(browser, mongo_url, tmp_path):
    """A key with "/", "%", "?", "#" and a space: the link, the page and every API call it makes
    (experiment, trial detail, contour) reach that experiment."""
    db = f"t_{uuid.uuid4().hex[:10]}"
    key = "team/run 1?a=%41#x"
    search(mongo_url, db, key, 12, tmp_path, workers=1)
    errors: list[str] = []
    try:
        with dashboard(mongo_url, db) as base:
            page = _page(browser, errors)
            page.goto(base + "/")
            page.get_by_role("link", name=key).click()
            _all_plots_drawn(page)
            assert page.locator("#trial-table tbody tr").count() == 12
            page.locator("#trial-table tbody tr").first.click()
            page.wait_for_selector("#detail pre")
            page.select_option("#contour-pair", index=1)
            page.wait_for_function("+document.querySelector('#fig-contour').dataset.rendered >= 2")
            assert not page.is_visible("#error") and errors == [], errors
            page.goto(base + "/experiments/team/" + quote(key[5:], safe=""))  # the "/" typed unencoded
            _all_plots_drawn(page)
            assert page.locator("#trial-table tbody tr").count() == 12 and errors == [], errors
            page.goto(base + "/experiments/team/run1")  # a missing key: said so
            assert "no experiment 'team/run1'" in page.inner_text("body")
    finally:
        store = Store(mongo_url, db=db)
        raw.client(store).drop_database(db)
        store.close()
