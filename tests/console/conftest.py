"""Fixtures of the console tests: a gateway with the console (``harness``) and Debian's chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from console.harness import CHROMIUM, PASSWORD, ConsoleGateway


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """One gateway for the module's tests: each signs in afresh, uses message ids of its own and
    reads only the audit entries written since it started (``console.audit_mark``)."""
    started = ConsoleGateway(tmp_path_factory.mktemp("console"))
    yield started
    started.close()


@pytest.fixture
def fresh_console(tmp_path):
    """A gateway of the test's own, for what depends on everything the store holds (a subject's
    whole report, the screenshots)."""
    started = ConsoleGateway(tmp_path)
    yield started
    started.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless (Playwright cannot download its own browsers here).

    Started and stopped per module instead of pytest-playwright's session-wide fixtures: the
    sync API keeps an event loop running on the main thread while it is open, and the
    asyncio tests that run after these must find none."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("the browser tests need chromium: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-GB")
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def sign_in(page, console):
    def sign_in_as(username: str, password: str = PASSWORD, *, at: str | None = None):
        page.goto((at or console.url) + "/console/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        return page

    return sign_in_as
