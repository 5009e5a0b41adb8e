"""The console in a real browser: log in, find the failed run, retry it, watch it succeed.

Headless Chromium is Debian's (/usr/bin/chromium, `make browser-deps`), driven
by Playwright for Python; no browser is ever downloaded. Screenshots of each
stage land in test-artifacts/console/ for a person to look at.

Without chromium or playwright the test skips, saying why; with
HOOKFLOW_REQUIRE_BROWSER=1 (what .ci/run sets) it fails instead, so a CI
machine missing the browser cannot go green without this test.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox.server import serve_in_thread
from schemas.settings import PROJECT_ROOT
from tests.conftest import ADMIN_TOKEN, SECRETS, Drain, Sandbox, post_hook

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "console"
REQUIRE_BROWSER = "HOOKFLOW_REQUIRE_BROWSER"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")


def _playwright() -> Any:
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError:
        return None


def _missing() -> str | None:
    """Why the browser test cannot run on this machine, or None."""
    if playwright_api is None:
        return "playwright is not installed (requirements-dev.txt)"
    if _chromium() is None:
        return "Debian's chromium is not installed at /usr/bin/chromium; run `make browser-deps`"
    return None


playwright_api = _playwright()
MISSING = _missing()
REQUIRED = os.environ.get(REQUIRE_BROWSER) == "1"

pytestmark = pytest.mark.skipif(MISSING is not None and not REQUIRED, reason=MISSING or "")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"console_refresh_seconds": 0.5}  # the page refreshes itself quickly while the run is active


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    server = serve_in_thread(app)
    yield server.url
    server.stop()


@pytest.fixture
def browser_present() -> None:
    """Fails, rather than skips, when the browser is required here and missing."""
    if MISSING is not None:
        pytest.fail(f"{MISSING}, and {REQUIRE_BROWSER}=1 says this machine must run the browser test", pytrace=False)


@pytest.fixture
def page(browser_present: None, live_url: str) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=_chromium(), headless=True, args=LAUNCH_ARGS)
        context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab
        context.close()
        browser.close()


def test_an_operator_finds_a_failed_run_retries_it_and_sees_it_succeed(
    page: Any, client: FlaskClient, drain: Drain, sandbox: Sandbox
) -> None:
    expect = playwright_api.expect
    # Given a web enquiry whose run failed: BigChange refused the contact once
    sandbox.fault("/contacts/create", status=400, times=1)
    body = json.loads((PROJECT_ROOT / "examples" / "web-enquiry.json").read_text())
    accepted = post_hook(client, "webform", json.dumps(body).encode(), **{"X-Hook-Token": SECRETS["WEBFORM_TOKEN"]})
    run_id = accepted.get_json()["runs"][0]
    drain()

    # When the operator logs in ...
    page.goto("/runs")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "01-login.png"))
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()

    # ... filters the runs to the failed ones and opens the run
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr.run")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "02-failed-runs.png"), full_page=True)
    page.get_by_role("link", name=run_id).click()
    expect(page.locator("h1 .badge")).to_have_text("failed")
    expect(page.locator('.step[data-step="contact"]')).to_contain_text("Injected fault")
    page.screenshot(path=str(ARTIFACTS / "03-failed-run.png"), full_page=True)

    # ... and retries it
    page.get_by_role("button", name="Retry from failed step").click()
    expect(page.get_by_role("status")).to_have_text("Retrying from the failed step.")
    drain()

    # Then the page, refreshing itself, shows the run succeeded with every step done
    expect(page.locator("h1 .badge")).to_have_text("succeeded")
    expect(page.locator(".step[data-status=succeeded]")).to_have_count(4)
    expect(page.get_by_role("button", name="Retry from failed step")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "04-succeeded.png"), full_page=True)
