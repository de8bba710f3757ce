"""Fixtures of the console tests: a gateway with the console (``harness``) and Debian's chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from console.harness import CHROMIUM, PASSWORD, ConsoleGateway


@pytest.fixture
def console(tmp_path):
    started = ConsoleGateway(tmp_path)
    yield started
    started.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Playwright cannot download its own browsers here: Debian's chromium (apt-get install chromium).
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("the browser tests need chromium: apt-get install -y chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True}


@pytest.fixture
def sign_in(page, console):
    def sign_in_as(username: str, password: str = PASSWORD):
        page.goto(console.url + "/console/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        return page

    return sign_in_as
