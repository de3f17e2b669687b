"""The status page in a real headless browser: Debian's chromium, driven by selenium through
Debian's chromedriver, against the API served on a real port (ApiServer) over a ledger the
sandbox daemon has worked.

Signs in through the form, checks every section renders, takes a screenshot (into pytest's
tmp dir; also to $MFN_STATUS_SCREENSHOT when set), releases a held order with the button, finds
no buyer address on any page, and checks a read-only token gets no release.

Needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver) and
selenium (the test extra). Without them the test skips -- except with CI=true, where it fails:
CI must run it (.ci/run installs the browser).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from connector.api.routes import status
from connector.cli.serving import ApiServer
from connector.ledger import OrderState

from .test_status_html import SECTIONS, buyer_data_in, held_ids

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = os.environ.get("MFN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MFN_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 20  # seconds for a page to load


def _need_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if not missing:
        return
    reason = (f"the status page browser test needs {', '.join(missing)}; on Debian: "
              "apt-get install chromium chromium-driver")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} -- CI=true: the browser test must run in CI (.ci/run installs them)",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    # the driver path is given: selenium's own driver download (Selenium Manager) is never needed
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER,
                                              log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(driver, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _sign_in(driver, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/status")
    assert driver.current_url == url + "/status/login", "an unsigned visit goes to the sign-in form"
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    _wait_for(driver, "section#plugins")
    assert driver.current_url == url + "/status"


def _sign_out(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "form[action='/status/logout'] button").click()
    _wait_for(driver, "#sign-in")


def _screenshot(driver, path: Path) -> None:
    """The whole page, not only the window."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 40, 1000), 12000))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), f"no screenshot at {path}"
    driver.set_window_size(1400, 1000)


def test_status_page_in_a_headless_browser(api, browser, tmp_path):
    from selenium.webdriver.common.by import By

    a = api()
    a.run_daemon()
    held = held_ids(a)
    assert len(held) >= 2, "the sandbox seeds held orders"
    with ApiServer(a.rt, any_port=True) as server:
        url = server.url
        _sign_in(browser, url, a.tokens["operate"])

        # every section renders, with the daemon's data in it
        text = browser.find_element(By.TAG_NAME, "body").text
        for section in SECTIONS:
            assert section in text, section
        assert all(oid in text for oid in held)
        assert {r.hold_reason for r in a.rt.ledger.orders([OrderState.HELD])} <= set(text.split())
        assert any(p.status == "loaded" for p in a.rt.host.reports.values()) and "loaded" in text
        assert "Release" in text

        # the session cookie: HttpOnly, SameSite=Strict, sent to /status only
        cookie = browser.get_cookie(status.COOKIE)
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/status"

        shot = tmp_path / "status-page.png"
        _screenshot(browser, shot)
        assert shot.stat().st_size > 10_000
        if os.environ.get("MFN_STATUS_SCREENSHOT"):
            target = Path(os.environ["MFN_STATUS_SCREENSHOT"])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, target)

        # nothing on the page is buyer data (the ledger holds their addresses, encrypted)
        assert buyer_data_in(a, browser.page_source) == []

        # the release button releases
        oid = held[0]
        expected = a.rt.ledger.get_order(oid).held_from or OrderState.NEW
        browser.find_element(By.CSS_SELECTOR, f"tr[data-order='{oid}'] button.release").click()
        notice = _wait_for(browser, "#notice")
        assert notice.text == f"Order {oid} released; it is now {expected.value}."
        assert a.rt.ledger.get_order(oid).state is expected
        assert not browser.find_elements(By.CSS_SELECTOR, f"#held-orders tr[data-order='{oid}']")

        # the list of every held order, from the same button
        browser.get(url + "/status/held")
        _wait_for(browser, "#held-orders")
        assert buyer_data_in(a, browser.page_source) == []
        other = held[1]
        browser.find_element(By.CSS_SELECTOR, f"tr[data-order='{other}'] button.release").click()
        _wait_for(browser, "#notice")
        assert browser.current_url.startswith(url + "/status/held?page=1&released=")
        assert a.rt.ledger.get_order(other).state is not OrderState.HELD

        # a read-only token sees the page but no release button
        _sign_out(browser)
        assert browser.get_cookie(status.COOKIE) is None
        _sign_in(browser, url, a.tokens["read"])
        assert not browser.find_elements(By.CSS_SELECTOR, "button.release")
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "Releasing needs a token with the operate scope" in text
        still_held = held_ids(a)
        assert still_held and all(oid in browser.page_source for oid in still_held)
        assert buyer_data_in(a, browser.page_source) == []
