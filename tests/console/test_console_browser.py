"""The console in a real browser (headless chromium): signing in, sessions, CSRF, what each role
sees, a replay that reaches the receiver, languages, the keyboard, and accessibility."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import aiohttp
import pytest
from playwright.sync_api import Page, expect

from console.harness import PASSWORD, SCREENSHOTS, SUBJECT_OFFICE_1, SUBJECT_OFFICE_2
from gateway.security.audit import AuditEntry
from gateway.store import MessageState
from support import person_payload

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _dead_letter(console, body: dict | None = None) -> str:
    """A message the receiver refuses for good: a dead letter at once."""
    console.receiver.respond = lambda body, seen: (400, {})
    response = console.call(_relay(console, body or person_payload(1)))
    message_id = response["message_id"]
    _wait(console, lambda: _state(console, message_id) is MessageState.DEAD)
    return message_id


async def _relay(console, body: dict) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{console.url}/api/v1/relay/health/bulk", json=body,
                             headers={"X-Member-Id": "penal", "X-Purpose": "relay_test"}) as answer:
            assert answer.status == 202, await answer.text()
            return await answer.json()


def _state(console, message_id: str):
    message = console.call(console.gateway.store.get_message(message_id))
    return message.state if message else None


def _wait(console, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)


def _audit(console) -> list[dict]:
    records = console.call(console.gateway.store.read_audit(1, 10_000))
    return [AuditEntry.parse(record).as_json() for record in records]


# ---------------------------------------------------------------- signing in


def test_a_person_signs_in_lands_on_their_screen_and_signs_out(console, page, sign_in):
    page.goto(console.url + "/console/dashboard")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/dashboard$"))
    _shot(page, "login")
    sign_in("aliya")
    expect(page).to_have_url(console.url + "/console/dashboard")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(console.url + "/console/login")
    page.goto(console.url + "/console/dashboard")
    expect(page).to_have_url(re.compile(r"/console/login"))
    kinds = [(e["kind"], e["outcome"], e["service"], e["member"]) for e in _audit(console)]
    assert ("sign_in", "accepted", "console/login", "console:aliya") in kinds
    assert ("sign_in", "accepted", "console/logout", "console:aliya") in kinds


def test_a_wrong_password_is_refused_with_a_message_and_recorded(console, page, sign_in):
    sign_in("aliya", "not the password at all")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page).to_have_url(console.url + "/console/login")
    assert [e for e in _audit(console) if e["kind"] == "sign_in" and e["outcome"] == "refused"
            and e["member"] == "console:aliya"]


def test_sign_in_is_throttled_after_five_failures_even_with_the_right_password(console, page, sign_in):
    for _ in range(5):
        sign_in("olga", "wrong wrong wrong")
    sign_in("olga")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(console.url + "/console/login")
    console.clock.advance(16 * 60)  # the window has passed
    sign_in("olga")
    expect(page).to_have_url(console.url + "/console/pretrial")


def test_an_idle_session_ends_by_the_gateway_clock(console, page, sign_in):
    sign_in("aliya")
    console.clock.advance(14 * 60)
    page.goto(console.url + "/console/messages")
    expect(page).to_have_url(console.url + "/console/messages")
    console.clock.advance(16 * 60)
    page.goto(console.url + "/console/messages")
    expect(page).to_have_url(re.compile(r"/console/login"))


# ---------------------------------------------------------------- CSRF


def test_a_replay_without_the_token_or_from_another_origin_is_refused_and_changes_nothing(console, page, sign_in):
    message_id = _dead_letter(console)
    sign_in("aliya")
    form = {"step": "replay", "ids": message_id}
    without_token = page.request.post(console.url + "/console/dead-letters/replay", form=form,
                                      headers={"Origin": console.url})
    assert without_token.status == 403
    page.goto(console.url + "/console/dead-letters")
    token = page.locator("#replay-form input[name=csrf]").get_attribute("value")
    foreign = page.request.post(console.url + "/console/dead-letters/replay", form=form | {"csrf": token},
                                headers={"Origin": "http://elsewhere.example"})
    assert foreign.status == 403
    assert _state(console, message_id) is MessageState.DEAD
    assert not [e for e in _audit(console) if e["kind"] == "action"]


# ---------------------------------------------------------------- what each role sees


def test_a_probation_officer_sees_only_their_office_and_another_offices_case_is_not_found(console, page, sign_in):
    sign_in("olga")
    expect(page.get_by_role("link", name="ptr-office1")).to_be_visible()
    expect(page.get_by_text("ptr-office2")).to_have_count(0)
    for path in ("/console/pretrial/ptr-office2", "/console/release-cases/rc-office2", "/console/dashboard"):
        response = page.goto(console.url + path)
        assert response.status == 404, path
    response = page.goto(console.url + "/console/release-cases/rc-office1")
    assert response.status == 200
    expect(page.get_by_text(SUBJECT_OFFICE_1)).to_be_visible()
    assert not [e for e in _audit(console) if e["subject"] == SUBJECT_OFFICE_2]


def test_an_operator_sees_a_payload_only_after_giving_a_reason_and_the_view_is_recorded(console, page, sign_in):
    message_id = _dead_letter(console, person_payload(text="payload-marker-42"))
    sign_in("aliya")
    page.goto(f"{console.url}/console/messages/{message_id}")
    expect(page.get_by_text("payload-marker-42")).to_have_count(0)
    page.get_by_label("Reason").fill("too short")
    page.get_by_label("Reason").evaluate("e => e.removeAttribute('minlength')")
    page.get_by_role("button", name="Show payload").click()
    expect(page.get_by_text("at least 10 characters")).to_be_visible()
    expect(page.get_by_text("payload-marker-42")).to_have_count(0)
    page.get_by_label("Reason").fill("the receiver says the notice field is malformed")
    page.get_by_role("button", name="Show payload").click()
    expect(page.locator("pre.payload")).to_contain_text("payload-marker-42")
    _shot(page, "message")
    views = [e for e in _audit(console) if e["document_type"] == "MessagePayload"]
    assert [(v["member"], v["message_id"], v["reason"]) for v in views] == [
        ("console:aliya", message_id, "the receiver says the notice field is malformed")]


def test_every_view_of_a_persons_data_is_in_their_oversight_report_under_the_account(console, page, sign_in):
    sign_in("olga")
    page.goto(console.url + "/console/pretrial/ptr-office1")
    expect(page.get_by_text("CRT-2026-0042")).to_be_visible()
    _shot(page, "pretrial-report")
    page.goto(console.url + "/console/release-cases/rc-office1")
    page.get_by_role("button", name="Sign out").click()
    sign_in("oskar")
    page.get_by_label("IIN of the person").fill(SUBJECT_OFFICE_1)
    page.get_by_role("button", name="Show").click()
    rows = page.locator("#subject-entries tbody tr")
    expect(rows.filter(has_text="PreTrialReportList")).to_have_count(1)
    for document in ("PreTrialReportStatus", "ReleaseCase"):
        row = rows.filter(has_text=document)
        expect(row).to_contain_text("Olga Probation")
        expect(row).to_contain_text("console:olga")
        expect(row).to_contain_text("probation_supervision")
    _shot(page, "oversight")
    page.goto(console.url + f"/console/oversight?iin={SUBJECT_OFFICE_2}")
    expect(page.get_by_text("Olga Probation")).to_have_count(0)


def test_oversight_and_auditors_do_not_see_case_content(console, page, sign_in):
    sign_in("oskar")
    for path in ("/console/pretrial/ptr-office1", "/console/release-cases/rc-office1", "/console/messages"):
        assert page.goto(console.url + path).status == 404, path


# ---------------------------------------------------------------- dead letters


def test_a_dead_letter_replayed_from_the_console_after_the_receiver_recovers_is_delivered(console, page, sign_in):
    message_id = _dead_letter(console, person_payload(text="replay-me"))
    console.receiver.respond = lambda body, seen: (200, {})
    sign_in("aliya")
    page.goto(console.url + "/console/dead-letters")
    page.get_by_label(f"Select {message_id}").check()
    page.get_by_role("button", name="Replay selected…").click()
    expect(page.get_by_text("Replay 1 dead letter? To: health (1)")).to_be_visible()
    _shot(page, "dead-letters-confirm")
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("1 dead letter queued again.")
    _wait(console, lambda: any(r.json() == person_payload(text="replay-me") and r.headers.get("X-Message-Id") == message_id
                               for r in console.receiver.received if r.body))
    assert _state(console, message_id) is MessageState.DELIVERED
    assert [(e["member"], e["message_id"]) for e in _audit(console) if e["kind"] == "action"] == [
        ("console:aliya", message_id)]


def test_a_replay_can_be_done_with_the_keyboard_alone(console, page):
    message_id = _dead_letter(console)
    console.receiver.respond = lambda body, seen: (200, {})
    page.goto(console.url + "/console/login")
    page.keyboard.type("aliya")  # the username field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(console.url + "/console/dashboard")
    _tab_to(page, 'a[href="/console/dead-letters"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(console.url + "/console/dead-letters")
    _tab_to(page, f'input[value="{message_id}"]')
    page.keyboard.press("Space")
    _tab_to(page, "#replay-form button", backwards=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("alertdialog")).to_be_visible()
    page.keyboard.press("Enter")  # the confirmation's Replay button has the focus
    expect(page.get_by_role("status")).to_contain_text("1 dead letter queued again.")
    _wait(console, lambda: _state(console, message_id) is MessageState.DELIVERED)


def _tab_to(page: Page, selector: str, *, backwards: bool = False, limit: int = 80) -> None:
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with {key}")


# ---------------------------------------------------------------- languages


def test_the_language_follows_accept_language_until_the_person_chooses_one(console, browser):
    context = browser.new_context(locale="kk-KZ")
    page = context.new_page()
    page.goto(console.url + "/console/login")
    expect(page.locator("html")).to_have_attribute("lang", "kk")
    expect(page.get_by_role("heading", level=1)).to_have_text("Кіру")
    page.get_by_role("link", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Вход")
    page.get_by_label("Имя пользователя").fill("aliya")
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Вход").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Обзор")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    context.close()


# ---------------------------------------------------------------- accessibility, and the screenshots


_SCREENS = {
    "aliya": ("dashboard", "messages", "dead-letters", "release-cases", "indicators"),
    "olga": ("pretrial", "pretrial/new", "release-cases/rc-office1"),
    "oskar": (f"oversight?iin={SUBJECT_OFFICE_1}", "audit"),
    "aida": ("audit?verify=1",),
}


def test_every_console_page_has_no_serious_or_critical_accessibility_violation(console, page, sign_in):
    assert AXE.is_file(), "axe-core is missing: run npm ci"
    _dead_letter(console)
    console.call(console.gateway.audit.sign_tree_head())
    axe = AXE.read_text(encoding="utf-8")
    pages = [("login", None)] + [(path, user) for user, paths in _SCREENS.items() for path in paths]
    found = {}
    signed_in = None
    for path, user in pages:
        if user != signed_in:
            page.context.clear_cookies()
            if user:
                sign_in(user)
            signed_in = user
        page.goto(f"{console.url}/console/{path}")
        page.evaluate(axe)
        result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
        serious = [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result
                   if v["impact"] in ("serious", "critical")]
        if serious:
            found[path] = serious
        _shot(page, re.sub(r"[^a-z0-9]+", "-", path.split("?")[0]).strip("-") or "login")
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("path", ["/console/login", "/console/dashboard"])
def test_pages_forbid_framing_and_inline_script(console, page, path):
    response = page.goto(console.url + path)
    headers = response.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
