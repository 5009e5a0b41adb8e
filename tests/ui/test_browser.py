"""The console in a real browser: log in, find the failed run, retry it, watch it succeed.

Headless Chromium is Debian's (/usr/bin/chromium, `make browser-deps`), driven
by Playwright for Python; no browser is ever downloaded. Screenshots of each
stage land in test-artifacts/console/ for a person to look at.
"""

from __future__ import annotations

import json
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
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed at /usr/bin/chromium; run `make browser-deps`",
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"console_refresh_seconds": 0.5}  # the page refreshes itself quickly while the run is active


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    server = serve_in_thread(app)
    yield server.url
    server.stop()


@pytest.fixture
def page(live_url: str) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
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
