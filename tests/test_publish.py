"""The published leaderboard: files, the paired test, and the page in a real
headless Chromium driven by Selenium through Debian's chromedriver (loads with
no network, a click on a header sorts, a screenshot is written)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from submission_helpers import good_submission, good_submission_v2, write_suites, write_suites_all
from ssbm_bench.cli import main
from ssbm_bench.statistics import paired_test as paired_sign_flip
from ssbm_bench.submission import add_submission


def test_sign_flip_is_exact_for_few_utterances():
    a = {f"u{i}": 1.0 for i in range(5)}
    b = {f"u{i}": 0.0 for i in range(5)}
    diff, n, p = paired_sign_flip(a, b)
    assert (diff, n) == (1.0, 5) and p == pytest.approx(2 / 32)  # only all-plus and all-minus are as extreme
    a6 = {f"u{i}": 1.0 for i in range(6)}
    assert paired_sign_flip(a6, {u: 0.0 for u in a6})[2] == pytest.approx(2 / 64)


def test_sign_flip_pairs_only_shared_utterances_and_handles_ties():
    assert paired_sign_flip({"a": 1.0, "b": 2.0}, {"b": 2.0, "c": 0.0}) == (0.0, 1, 1.0)
    assert paired_sign_flip({}, {"x": 1.0})[1:] == (0, 1.0)
    # one shared utterance: +d and -d are equally extreme, p = 1 (two tables of one utterance each still publish)
    assert paired_sign_flip({"a": 3.0, "b": 1.0}, {"a": 1.0}) == (2.0, 1, 1.0)


def test_sign_flip_with_many_utterances_separates_signal_from_noise():
    rng = __import__("numpy").random.default_rng(1)
    noise = rng.normal(0, 1, 40)
    a = {f"u{i}": float(x) for i, x in enumerate(noise)}
    zero = {u: 0.0 for u in a}
    assert paired_sign_flip(a, zero)[2] > 0.05
    shifted = {u: v + 2.0 for u, v in a.items()}
    assert paired_sign_flip(shifted, zero)[2] < 0.001


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    d = tmp_path_factory.mktemp("publish")
    lb = d / "lb"
    write_suites(lb / "suites")
    sub = d / "good.json"
    sub.write_text(json.dumps(good_submission()))
    add_submission(sub, lb)
    out = d / "site"
    assert main(["leaderboard", "publish", "--out", str(out), "--dir", str(lb)]) == 0
    return out


def test_publish_writes_markdown_csv_json_html_and_figures(published):
    readme = (published / "README.md").read_text()
    assert "## SSBM — suite `handmade`, corpus `synthetic`" in readme
    assert "| rank | method | fill | score | 95% CI | cells | utterances | source |" in readme
    assert "hand made (handmade--" in readme
    assert "not significantly different: paired sign-flip test over 2 utterance(s)" in readme
    rows = list(csv.DictReader(io.StringIO((published / "leaderboard.csv").read_text())))
    assert [r["rank"] for r in rows] == ["1", "2"] and {r["method"] for r in rows} == {"energy", "random"}
    assert float(rows[0]["score"]) >= float(rows[1]["score"])
    doc = json.loads((published / "leaderboard.json").read_text())
    assert doc["tables"][0]["rows"][0]["vs_next"]["n"] == 2
    figures = sorted(p.name for p in (published / "figures").glob("*.png"))
    assert len(figures) == 2
    page = (published / "index.html").read_text()
    assert "http://" not in page and "https://" not in page and 'src="//' not in page  # nothing remote
    assert all(f"figures/{f}" in page for f in figures)


# Debian's chromium and its chromium-driver (`make setup` installs both): the driver's version is the browser's
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# the flags that keep the browser itself off the network; chromedriver adds its own (remote debugging, automation)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio",
                  # any host name resolves to nothing: a page that tries the network fails loudly
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,900"]


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """Selenium driving Debian's chromedriver; Selenium Manager is never asked for (nor allowed to fetch) a driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # were Selenium Manager ever run, it would download nothing
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # Selenium -> chromedriver: direct
        monkeypatch.delenv(var, raising=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the DevTools events: every request
    # a driver path given: Selenium skips Selenium Manager altogether
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        # Debian's chromium starts on its new-tab page, which loads chrome:// resources of its own for a while:
        # the page is opened in a fresh about:blank tab, and only that tab's requests are counted
        driver.switch_to.new_window("tab")
        yield driver
    finally:
        driver.quit()


def _requested_urls(driver) -> list[str]:
    """URLs requested from the current tab since the last call (chromedriver's performance log drains as read)."""
    events = [json.loads(e["message"]) for e in driver.get_log("performance")]
    return [e["message"]["params"]["request"]["url"] for e in events
            if e["webview"] == driver.current_window_handle and e["message"]["method"] == "Network.requestWillBeSent"]


@pytest.mark.skipif(CHROMIUM is None or not CHROMEDRIVER.is_file(),
                    reason="Debian's chromium and chromium-driver are not installed (make setup installs them)")
def test_the_page_loads_offline_sorts_on_click_and_screenshots(published, tmp_path, browser):
    assert _requested_urls(browser) == []  # a blank tab
    browser.get((published / "index.html").as_uri())  # returns once the page has loaded
    assert browser.execute_script("return document.body.getAttribute('data-ready')") == "1"
    urls = _requested_urls(browser)
    assert urls and all(u.startswith("file://") for u in urls), urls  # nothing but local files
    # every figure decodes (figures load lazily: ask for them now; a broken image fails to decode)
    assert browser.execute_async_script("""const done = arguments[arguments.length - 1];
        Promise.all(Array.from(document.images).map(i => { i.loading = 'eager';
            return i.decode().then(() => i.naturalWidth > 0, () => false); }))
        .then(ok => done(ok.every(Boolean)));""")
    assert all(u.startswith("file://") for u in _requested_urls(browser))  # figures are local files too
    assert browser.execute_script("return document.images.length") == 2

    def column(name):
        return browser.execute_script("""const t = document.querySelector('table.board');
            const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent === arguments[0]);
            return Array.from(t.tBodies[0].rows).map(r => r.cells[i].textContent);""", name)

    def click_header(name):
        th = browser.execute_script("""return Array.from(document.querySelectorAll('table.board th'))
            .find(c => c.textContent === arguments[0]);""", name)
        th.click()  # a real mouse click at the header's centre, scrolled into view

    before = column("method")
    scores = [float(x) for x in column("score")]
    assert scores == sorted(scores, reverse=True)  # published in rank order
    click_header("score")
    assert [float(x) for x in column("score")] == sorted(scores)  # ascending after one click
    assert browser.execute_script("return document.querySelector('table.board th[aria-sort]').textContent") == "score"
    click_header("score")
    assert [float(x) for x in column("score")] == sorted(scores, reverse=True)
    click_header("method")
    assert column("method") == sorted(before)
    assert all(u.startswith("file://") for u in _requested_urls(browser))  # sorting asked for nothing either
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def _isa_row(method, score, aggregation="none", independent=False):
    return {"board": "isa", "suite": "isa-s", "corpus": "commands", "corpus_digest": "c" * 64,
            "model": "family:commands-action", "method": method, "fill": "-", "aggregation": aggregation,
            "score": score, "ci_low": score - 0.1, "ci_high": score + 0.1, "baseline": 0.2, "n": 8, "n_pairs": 3,
            "kappa": 0.69, "input_type": "stft:magnitude", "model_independent": independent}


def _stability_row(fill, n_samples, u_n):
    return {"board": "stability", "suite": "st", "corpus": "vad-ground-truth", "corpus_digest": "v" * 64,
            "model": "silero-vad", "method": "soundlime-temporal", "fill": fill, "n_samples": n_samples,
            "score": u_n, "ci_low": u_n - 0.5, "ci_high": u_n + 0.5, "n": 6, "runs": 5, "n_ce": 2.5,
            "reference_fill": "zero", "full_match": 0.85, "at_least_two": 1.0}


def test_isa_and_stability_tables_split_rank_and_describe_their_rows():
    """ISA: a table per aggregation, higher is better, model-independent maps last whatever their score;
    stability: a table per N_s in N_s order, lower U_n is better; neither gets a paired test."""
    from ssbm_bench.publish import Source, build_tables, to_csv, to_markdown

    rows = {"isa": [_isa_row("saliency", 0.6), _isa_row("energy", 1.0, independent=True), _isa_row("lime", 0.9),
                    _isa_row("saliency", 0.7, aggregation="words")],
            "stability": [_stability_row("zero", 100, 3.25), _stability_row("gauss_norm", 100, 4.5),
                          _stability_row("mean_inp", 100, 3.5), _stability_row("zero", 25, 4.0)]}
    tables = build_tables([Source("store.sqlite", [], rows)])
    shape = [(t.board, t.sub, [r["method"] if t.board == "isa" else r["fill"] for r in t.rows]) for t in tables]
    assert shape == [("isa", "none", ["lime", "saliency", "energy"]), ("isa", "words", ["saliency"]),
                     ("stability", 25, ["zero"]), ("stability", 100, ["zero", "mean_inp", "gauss_norm"])]
    assert all(not t.notes for t in tables)
    md = to_markdown(tables, 0, 1)
    assert "## ISA — suite `isa-s`, corpus `commands`" in md and "aggregation `none`" in md
    assert "## Stability — suite `st`" in md and "N_s = 100" in md
    assert "shuffled baseline 0.20" in md and "model-independent: agrees by construction, ranked last" in md
    assert "full match 85%, at least 2 of 3 100%" in md
    got = list(csv.DictReader(io.StringIO(to_csv(tables))))
    assert {(r["board"], r["rank"], r["fill"], r["n_samples"]) for r in got if r["board"] == "stability"} == {
        ("stability", "1", "zero", "25"), ("stability", "1", "zero", "100"), ("stability", "2", "mean_inp", "100"),
        ("stability", "3", "gauss_norm", "100")}


def test_a_version_2_submission_publishes_its_isa_and_stability_tables(tmp_path):
    """No store named: the ISA and stability tables (and their figures) come from the submission's cells."""
    lb = tmp_path / "lb"
    write_suites_all(lb / "suites")
    path = tmp_path / "all.json"
    path.write_text(json.dumps(good_submission_v2()))
    dest, _, _ = add_submission(path, lb)
    out = tmp_path / "site"
    assert main(["leaderboard", "publish", "--out", str(out), "--dir", str(lb)]) == 0
    readme = (out / "README.md").read_text()
    assert "## SSBM — suite `handmade-all`, corpus `synthetic`" in readme
    for family, corpus in (("voices", "synthetic"), ("commands-action", "commands[split=test]")):
        for agg in ("none", "frames", "words"):
            assert (f"## ISA — suite `handmade-all`, corpus `{corpus}`" in readme
                    and f"model `family:{family}`, aggregation `{agg}`" in readme)
    assert "## Stability — suite `handmade-all`, corpus `vad-ground-truth`" in readme
    assert "N_s = 20" in readme and "N_s = 50" in readme and f"hand made ({dest.name})" in readme
    assert "model-independent: agrees by construction, ranked last" in readme
    tables = json.loads((out / "leaderboard.json").read_text())["tables"]
    stab = [t for t in tables if t["board"] == "stability" and t["n_samples"] == 20]
    assert [(r["rank"], r["fill"], r["score"]) for r in stab[0]["rows"]] == [(1, "zero", 3.0), (2, "mean_inp", 4.0)]
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"handmade-all--family-voices--isa.png", "handmade-all--family-commands-action--isa.png",
            "handmade-all--silero-vad--soundlime-temporal--stability.png"} <= figures
    page = (out / "index.html").read_text()
    assert "figures/handmade-all--silero-vad--soundlime-temporal--stability.png" in page
