"""``lasskit listen serve`` in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``make install``) driven by Selenium, on a phone-sized window."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest
from test_listen import NO_QC, make_workspace, running_server

from lasskit.listening import create_test, load_test

pytestmark = pytest.mark.slow  # a real browser: a few seconds a test


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    binary, driver_path = _chromium(), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("no chromium/chromedriver: `make install` as root installs Debian's chromium and chromium-driver")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=390,844"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as exc:  # a browser that cannot start here (no /dev/shm, sandbox, ...)
        pytest.skip(f"chromium could not start: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    yield driver
    driver.quit()


def test_a_rater_rates_a_test_end_to_end_and_resumes_after_reload(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    ws = make_workspace(tmp_path, n_items=2, duration=0.4)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, repeats=1, **NO_QC)
    spec = load_test(r.root)
    token = r.links[0][1]
    d = browser
    wait = WebDriverWait(d, 15, poll_frequency=0.05)
    by_id = lambda i: d.find_element(By.ID, i)

    def progress(n):
        wait.until(lambda _: by_id("screen").is_displayed() and by_id("progress-text").text == f"{n} of 5")

    def unlocked():
        wait.until(lambda _: by_id("scale-rel").get_attribute("disabled") is None)

    def click(scale, point):
        d.find_elements(By.CSS_SELECTOR, f"#scale-{scale} .choices button")[point - 1].click()

    with running_server(spec) as port:
        d.get(f"http://127.0.0.1:{port}/r/{token}")
        wait.until(lambda _: by_id("begin").is_displayed())
        assert "headphones" in by_id("instructions").text
        by_id("begin").click()
        # screen 1: the answers stay locked until the clip has played; then mouse answers
        progress(1)
        assert "<b>" in by_id("query").text  # text, never markup
        assert by_id("scale-rel").get_attribute("disabled") is not None and not by_id("next").is_enabled()
        by_id("play-clip").click()
        unlocked()
        click("rel", 4)
        assert not by_id("next").is_enabled()  # both scales needed
        click("ovl", 2)
        by_id("next").click()
        # screen 2: keyboard only (Space plays, 1-5 answer REL then OVL, Enter goes on)
        progress(2)
        body = d.find_element(By.TAG_NAME, "body")
        body.send_keys("5")  # ignored: the clip has not played
        body.send_keys(Keys.SPACE)
        unlocked()
        body.send_keys("5")
        body.send_keys("3")
        body.send_keys(Keys.ENTER)
        progress(3)
        # accessible names: no key names, the playing state in text and aria-pressed
        assert "Space" not in by_id("play-clip").accessible_name and "Enter" not in by_id("next").accessible_name
        assert by_id("play-clip").get_attribute("aria-pressed") == "false"
        # closing and reopening the page resumes where the rater stopped
        d.refresh()
        progress(3)
        for n in (3, 4, 5):
            progress(n)
            if n == 3:  # Tab to "Original recording", Enter plays it (a focused button acts on Enter/Space)
                by_id("play-clip").send_keys(Keys.TAB)
                assert d.switch_to.active_element == by_id("play-ref")
                d.switch_to.active_element.send_keys(Keys.ENTER)
                wait.until(lambda _: by_id("play-ref").get_attribute("aria-pressed") == "true")
                assert "playing" in by_id("play-ref").text
                wait.until(lambda _: by_id("play-ref").get_attribute("aria-pressed") == "false")
            by_id("play-clip").click()
            unlocked()
            if n == 4:  # keyboard only with Tab: Enter on a focused REL button, Space on a focused OVL button
                rel = d.find_elements(By.CSS_SELECTOR, "#scale-rel .choices button")[n - 1]
                ovl = d.find_elements(By.CSS_SELECTOR, "#scale-ovl .choices button")[6 - n - 1]
                d.execute_script("arguments[0].focus()", by_id("play-ref"))
                while d.switch_to.active_element != rel:
                    d.switch_to.active_element.send_keys(Keys.TAB)
                rel.send_keys(Keys.ENTER)
                assert rel.get_attribute("aria-pressed") == "true"
                while d.switch_to.active_element != ovl:
                    d.switch_to.active_element.send_keys(Keys.TAB)
                ovl.send_keys(Keys.SPACE)
                assert ovl.get_attribute("aria-pressed") == "true"
                assert by_id("play-clip").get_attribute("aria-pressed") == "false"  # Space did not restart the clip
                by_id("next").send_keys(Keys.ENTER)
                continue
            click("rel", n)
            click("ovl", 6 - n)
            by_id("next").click()
        wait.until(lambda _: by_id("done").is_displayed())
        assert "Thank you" in by_id("done").text
        d.refresh()
        wait.until(lambda _: by_id("done").is_displayed())
        d.get(f"http://127.0.0.1:{port}/r/{'z' * 24}")
        assert "Unknown link" in d.title or "unknown link" in d.page_source
    con = sqlite3.connect(spec.db_path)
    rows = con.execute("SELECT position, stimulus, rel, ovl, repeat, listened_ms FROM ratings ORDER BY position").fetchall()
    plan = con.execute("SELECT position, stimulus, repeat_of FROM plan ORDER BY position").fetchall()
    assert [(p, s) for p, s, *_ in rows] == [(p, s) for p, s, _ in plan]
    assert [(rel, ovl) for _, _, rel, ovl, _, _ in rows] == [(4, 2), (5, 3), (3, 3), (4, 2), (5, 1)]
    assert sum(rep for *_, rep, _ in rows) == 1 == sum(rep is not None for *_, rep in plan)
    assert all(ms >= 300 for *_, ms in rows)  # every clip was played (0.4 s)
    plays = {s for (s,) in con.execute("SELECT stimulus FROM plays")}
    assert {s for _, s, _ in plan} <= plays and plays & {it["reference"] for it in spec.items}
    started = con.execute("SELECT started FROM raters").fetchone()[0]
    assert started and time.strptime(started, "%Y-%m-%dT%H:%M:%S")


def _phone_page_fits(d, name, shots):
    """A phone-width page: no horizontal scrolling, a viewport meta, and a screenshot of that width."""
    from selenium.webdriver.common.by import By

    width = d.execute_script("return window.innerWidth")
    assert d.execute_script("return document.documentElement.scrollWidth") <= width, name
    assert d.find_elements(By.CSS_SELECTOR, "meta[name=viewport]"), name
    png = d.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") >= width, name
    shots.append(name)


def test_quality_control_missing_audio_and_every_page_at_phone_width(browser, tmp_path, monkeypatch):
    """A rater who trips the headphone, gold and trap rules; a clip that fails to load and then
    recovers; every page type at phone width."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from lasskit.listening import qc
    from lasskit.listening.results import results_for_test
    from lasskit.listening.store import Store

    for name, value in (("BURST_SECONDS", 0.15), ("GAP_SECONDS", 0.05), ("GOLD_SECONDS", 0.4), ("BEEP_GAP", 0.1),
                        ("TRAP_LEAD", 0.1)):
        monkeypatch.setattr(qc, name, value)
    ws = make_workspace(tmp_path, n_items=2, duration=0.3)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, repeats=0, gold=2, trap=True, headphone_check=True,
                    training="auto")
    spec = load_test(r.root)
    token = r.links[0][1]
    store = Store(spec)
    d = browser
    wait = WebDriverWait(d, 15, poll_frequency=0.05)
    by_id = lambda i: d.find_element(By.ID, i)
    shots: list[str] = []
    hp = spec.data["qc"]["headphones"]
    with running_server(spec) as port:
        d.get(f"http://127.0.0.1:{port}/")
        _phone_page_fits(d, "home", shots)
        d.get(f"http://127.0.0.1:{port}/r/{'z' * 24}")
        _phone_page_fits(d, "unknown link", shots)
        d.get(f"http://127.0.0.1:{port}/r/{token}")
        wait.until(lambda _: by_id("begin").is_displayed())
        assert "7 clips to rate, about" in by_id("estimate").text  # 2 items x 2 systems + 2 gold + 1 trap
        _phone_page_fits(d, "intro", shots)
        by_id("begin").click()
        # the headphone check: every trial answered wrongly
        wait.until(lambda _: by_id("checks").is_displayed())
        _phone_page_fits(d, "checks", shots)
        for k, trial in enumerate(by_id("trials").find_elements(By.TAG_NAME, "li")):
            trial.find_element(By.CSS_SELECTOR, "button.player").click()
            picks = trial.find_elements(By.CSS_SELECTOR, ".picks button")
            wait.until(lambda _: picks[0].is_enabled())
            picks[hp["trials"][k]["answer"] % 3].click()  # never the right burst
        by_id("checks-done").click()
        wait.until(lambda _: by_id("training").is_displayed())
        assert len(by_id("examples").find_elements(By.TAG_NAME, "li")) == len(spec.data["qc"]["training"])
        assert "Relevance: 5 Excellent" in by_id("examples").text
        _phone_page_fits(d, "training", shots)
        by_id("training-done").click()
        wait.until(lambda _: by_id("screen").is_displayed())
        # level descriptions visible before choosing; the instructions reachable from the screen
        assert spec.data["scales"]["rel"]["help"]["1"] in by_id("scale-rel").text
        _phone_page_fits(d, "screen", shots)
        by_id("show-help").click()
        wait.until(lambda _: by_id("help").is_displayed())
        assert "headphones" in by_id("help-text").text
        _phone_page_fits(d, "help", shots)
        by_id("hide-help").click()
        wait.until(lambda _: by_id("screen").is_displayed())
        gold = {g["stimulus"]: g for g in spec.data["qc"]["gold"]}
        trap = spec.data["qc"]["trap"]
        missing_done = False
        while not by_id("done").is_displayed():
            state = store.state(token)
            if state["finished"]:
                break
            sid = state["screen"]["stimulus"]
            wait.until(lambda _: by_id("progress-text").text == f"{state['done'] + 1} of {state['total']}")
            if not missing_done and sid not in gold and sid != trap["stimulus"]:
                # the clip's file is gone: "could not be loaded", the button resets, nothing recorded
                path = spec.audio_path(sid)
                path.rename(path.with_suffix(".away"))
                by_id("play-clip").click()
                wait.until(lambda _: by_id("error").is_displayed())
                assert "could not be loaded" in by_id("error").text
                assert by_id("play-clip").get_attribute("aria-pressed") == "false"
                assert "playing" not in by_id("play-clip").get_attribute("class")
                assert sid not in {s for (s,) in sqlite3.connect(spec.db_path).execute("SELECT stimulus FROM plays")}
                path.with_suffix(".away").rename(path)  # back: the next press plays it
                missing_done = True
            by_id("play-clip").click()
            wait.until(lambda _: by_id("scale-rel").get_attribute("disabled") is None)
            if sid in gold:  # the opposite of the known answer
                rel = 1 if gold[sid]["rel"][0] >= 4 else 5
                ovl = 3
            elif sid == trap["stimulus"]:
                rel = ovl = 1 if trap["answer"] != 1 else 5
            else:
                rel, ovl = 4, 4
            d.find_elements(By.CSS_SELECTOR, "#scale-rel .choices button")[rel - 1].click()
            d.find_elements(By.CSS_SELECTOR, "#scale-ovl .choices button")[ovl - 1].click()
            by_id("next").click()
            wait.until(lambda _: by_id("done").is_displayed() or store.state(token)["done"] > state["done"])
        wait.until(lambda _: by_id("done").is_displayed())
        _phone_page_fits(d, "done", shots)
    assert missing_done and shots == ["home", "unknown link", "intro", "checks", "training", "screen", "help", "done"]
    res = results_for_test(r.root, resamples=20, plots=False)
    (row,) = res.raters
    assert row["headphones"] == "failed" and row["gold_failed"] == 2 and row["trap_failed"] == 1
    assert res.by_rule["headphones"] == res.by_rule["gold"] == res.by_rule["trap"] == ["r01"]
    assert res.flagged == ["r01"] and res.counts["qc_answers"] == 3


def test_a_lost_connection_is_said_in_words_and_retried(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ws = make_workspace(tmp_path, n_items=2, duration=0.3)
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, **NO_QC)
    spec = load_test(r.root)
    d = browser
    wait = WebDriverWait(d, 15, poll_frequency=0.05)
    by_id = lambda i: d.find_element(By.ID, i)
    with running_server(spec) as port:
        d.get(f"http://127.0.0.1:{port}/r/{r.links[0][1]}")
        wait.until(lambda _: by_id("begin").is_displayed())
    by_id("begin").click()  # the server is gone
    wait.until(lambda _: by_id("fatal").is_displayed())
    assert by_id("fatal-title").text == "No connection" and "Cannot reach the test server" in by_id("fatal-text").text
    assert "Failed to fetch" not in d.find_element(By.TAG_NAME, "body").text and by_id("retry").is_displayed()
