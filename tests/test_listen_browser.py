"""``lasskit listen serve`` in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``make install``) driven by Selenium, on a phone-sized window."""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest
from test_listen import make_workspace, running_server

from lasskit.listening import create_test, load_test


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
    r = create_test(ws, "eval_real", ["good"], "t", raters=1, repeats=1)
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
        # closing and reopening the page resumes where the rater stopped
        d.refresh()
        progress(3)
        for n in (3, 4, 5):
            progress(n)
            if n == 3:
                by_id("play-ref").click()  # the original recording is there for comparison
                wait.until(lambda _: "playing" not in by_id("play-ref").get_attribute("class"))
            by_id("play-clip").click()
            unlocked()
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
