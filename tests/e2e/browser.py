"""A real headless Chromium (Debian's ``chromium`` and ``chromedriver``) driven by Selenium, for
the web UI's tests. Without them the tests skip, unless CI needs them (``CI=true`` or
``RUNLEDGER_REQUIRE_BROWSER=1``): then they fail. Screenshots go to ``test-artifacts/ui/``
(git-ignored), one per page visited."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

REQUIRE_BROWSER = os.environ.get("CI") == "true" or os.environ.get("RUNLEDGER_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
WIDE, PHONE = (1280, 900), (390, 844)


def _binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        reason = "Debian's chromium and chromium-driver are not installed (apt-get install chromium-driver)"
        if REQUIRE_BROWSER:
            pytest.fail(f"a headless browser is required (CI or RUNLEDGER_REQUIRE_BROWSER=1): {reason}")
        pytest.skip(reason)
    return chromium, driver


@contextmanager
def chromium(downloads: Path) -> Iterator[WebDriver]:
    """One headless Chromium at 1280 px wide, saving downloads into ``downloads``."""
    binary, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDE[0]},{WIDE[1]}")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: WebDriver, name: str, *, phone: bool = False) -> Path:
    """A full-height screenshot of the page as it is, under ``test-artifacts/ui/``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    width = PHONE[0] if phone else WIDE[0]
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(max(height + 120, 600), 6000))
    path = ARTIFACTS / f"{name}{'-phone' if phone else ''}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(*WIDE)
    return path


def wait_for(driver: WebDriver, css: str, timeout: float = 15.0) -> WebElement:
    element: WebElement = WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


def wait_text(driver: WebDriver, css: str, text: str, timeout: float = 15.0) -> None:
    WebDriverWait(driver, timeout).until(
        expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
    )
