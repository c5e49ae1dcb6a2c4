"""The served page in a real headless Chromium (Debian's chromium + chromium-driver).

`kpi-red serve` runs as a subprocess on a free loopback port against the dbt-built demo
database; Selenium loads `/`, waits for the numbers, compares them with the models and
saves `docs/panel.png` (the screenshot in docs/operations.md). Skipped when the binaries are absent:
`make test-browser` installs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_panel import BACKLOG, built_demo_database, expected_alerts, model_rows, signed

from matcher import panel

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "panel.png"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,1200",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (make test-browser installs them)",
    ),
]


@pytest.fixture(scope="module")
def built_db(make_database: Callable[..., Any]) -> Any:
    return built_demo_database(make_database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(built_db: Any) -> Iterator[str]:
    """`kpi-red serve` on a free loopback port; its base URL. Stopped afterwards."""
    port = free_port()
    kpi_red = Path(sys.executable).with_name("kpi-red")
    process = subprocess.Popen(
        [str(kpi_red), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **built_db.cli_env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = process.communicate(timeout=5)[0]
                    pytest.fail(f"kpi-red serve did not start:\n{output}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="kpi-red-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element("id", element_id).text)


def test_the_page_shows_the_database_numbers(built_db: Any, served: str, browser: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served + "/")
    WebDriverWait(browser, 30).until(
        lambda driver: driver.find_element("tag name", "body").get_attribute("data-state")
    )
    assert browser.find_element("tag name", "body").get_attribute("data-state") == "ready", text_of(
        browser, "error"
    )

    model = model_rows(built_db)
    newest = max(model)
    today = model[newest]
    assert text_of(browser, "metric-date") == newest
    # the backlog at the last build: today's end, and the view's count right after it
    assert text_of(browser, "current-backlog") == str(today["backlog_end"])
    assert today["backlog_end"] == built_db.scalar(f"select count(*) from {BACKLOG}")  # noqa: S608
    assert text_of(browser, "current-backlog-note") == "at the last dbt build"
    assert text_of(browser, "new-backlog-in") == str(today["new_backlog_in"])
    assert text_of(browser, "matched-out") == str(today["matched_out"])
    assert text_of(browser, "other-out") == str(today["other_out"])
    assert text_of(browser, "net-change") == signed(today["net_change"])
    assert text_of(browser, "top-fail-reason") == (today["top_fail_reason"] or "—")
    breakdown = " · ".join(f"{reason} {count}" for reason, count in panel.failures(today))
    assert text_of(browser, "fail-reasons") == (breakdown or "today")

    alert_keys = {
        item.get_attribute("data-key")
        for item in browser.find_elements("css selector", "#alerts li")
    }
    assert alert_keys == (set(expected_alerts(today)) or {"none"})

    rows = browser.find_elements("css selector", "#last-7-days tbody tr")
    assert len(rows) == 7 and rows[-1].get_attribute("data-date") == newest
    for table_row in rows:
        source = model.get(table_row.get_attribute("data-date"))
        cells = [cell.text for cell in table_row.find_elements("tag name", "td")]
        if source is None:
            assert cells[1:6] == ["—"] * 5
        else:
            assert cells[1:6] == [
                str(source[key])
                for key in ("backlog_start", "new_backlog_in", "matched_out", "other_out")
            ] + [str(source["backlog_end"])]

    bars = browser.find_elements("css selector", "#chart g[data-date]")
    chart_days = {bar.get_attribute("data-date") for bar in bars}
    assert newest in chart_days and chart_days <= set(model)
    assert len(browser.find_elements("css selector", "#chart .backlog-line")) == 1

    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1100, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
