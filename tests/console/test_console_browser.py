"""The console in a real browser (headless chromium): signing in, sessions, CSRF, what each role
sees, a replay that reaches the receiver, languages, the keyboard, and accessibility."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from console.harness import PASSWORD, SUBJECT_OFFICE_1, SUBJECT_OFFICE_2, save_screenshot, tab_to
from gateway.security.audit import AuditEntry
from gateway.store import AcceptMessage, MessageState, NewMessage
from support import person_payload

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def _shot(page: Page, name: str) -> None:
    # Tree-head roots and signatures hash the audit entries' random ids: painted over, so the
    # screen is the same from run to run (everything else is fixed: clock, keys, data).
    save_screenshot(page.screenshot(full_page=True, mask=[page.locator("code.hash")], mask_color="#9aa5b1"), name)


def _dead_letter(console, body: dict | None = None, message_id: str | None = None) -> str:
    """A message from penal to health that the receiver refuses for good: a dead letter after
    its one attempt. Its id is the gateway's next ``msg-NNNN`` (the screenshots show it)."""
    message_id = message_id or console.next_message_id()
    console.receiver.respond = lambda body, seen: (400, {})
    store, now = console.gateway.store, console.clock()
    console.call(store.apply([AcceptMessage(NewMessage(
        sender="penal", recipient="health", service="bulk", body=json.dumps(body or {"notice": 1}).encode(),
        content_type="application/json", correlation_id=f"corr-{message_id}", max_attempts=3,
        deadline_at=now + 86_400, client_message_id=message_id, purpose="relay_test", id=message_id))], now=now))
    _wait(console, lambda: _state(console, message_id) is MessageState.DEAD)
    return message_id


def _state(console, message_id: str):
    message = console.call(console.gateway.store.get_message(message_id))
    return message.state if message else None


def _wait(console, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _audit_mark(console):
    """Where the shared gateway's audit log stood when the test began: ``_audit`` reads from there."""
    console.audit_mark = console.call(console.gateway.store.audit_size())


def _audit(console) -> list[dict]:
    """The audit entries written since the test began."""
    records = console.call(console.gateway.store.read_audit(console.audit_mark + 1, 10_000))
    return [AuditEntry.parse(record).as_json() for record in records]


# ---------------------------------------------------------------- signing in


def test_a_person_signs_in_lands_on_their_screen_and_signs_out(console, page, sign_in):
    page.goto(console.url + "/console/dashboard")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/dashboard$"))
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


def test_sign_in_is_throttled_after_the_configured_failures_even_with_the_right_password(console, page, sign_in):
    assert console.gateway.config.console.throttle_per_account == 3
    for _ in range(3):
        sign_in("olga", "wrong wrong wrong")
    sign_in("olga")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(console.url + "/console/login")
    console.clock.advance(16 * 60)  # the window has passed
    sign_in("olga")
    expect(page).to_have_url(console.url + "/console/pretrial")


def test_an_idle_session_ends_by_the_gateway_clock_and_signing_in_again_returns_to_the_page(console, page, sign_in):
    sign_in("aliya")
    console.clock.advance(14 * 60)
    page.goto(console.url + "/console/messages")
    expect(page).to_have_url(console.url + "/console/messages")
    console.clock.advance(16 * 60)
    page.goto(console.url + "/console/messages?recipient=health&status=dead")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/messages(\?|%3F)recipient%3Dhealth"))
    page.get_by_label("Username").fill("aliya")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(console.url + "/console/messages?recipient=health&status=dead")
    expect(page.get_by_label("Recipient")).to_have_value("health")


def test_a_session_ends_at_the_absolute_limit_however_active(console, page, sign_in):
    sign_in("aliya")
    for _ in range(34):  # a request every 14 minutes: never idle, 7 h 56 min in all
        console.clock.advance(14 * 60)
        assert page.request.get(console.url + "/console/dashboard", max_redirects=0).status == 200
    console.clock.advance(5 * 60)  # 8 h 01 min after signing in, 5 min after the last request
    answer = page.request.get(console.url + "/console/dashboard", max_redirects=0)
    assert answer.status == 303 and answer.headers["location"].startswith("/console/login")


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
    views = [e for e in _audit(console) if e["document_type"] == "MessagePayload"]
    assert [(v["member"], v["message_id"], v["reason"]) for v in views] == [
        ("console:aliya", message_id, "the receiver says the notice field is malformed")]


def test_every_view_of_a_persons_data_is_in_their_oversight_report_under_the_account(fresh_console, page, sign_in):
    console = fresh_console  # the subject's whole report: only this test's views in it
    sign_in("olga", at=console.url)
    page.goto(console.url + "/console/pretrial/ptr-office1")
    expect(page.get_by_text("CRT-2026-0042")).to_be_visible()
    _shot(page, "pretrial-report")
    page.goto(console.url + "/console/release-cases/rc-office1")
    page.get_by_role("button", name="Sign out").click()
    sign_in("oskar", at=console.url)
    page.get_by_label("IIN of the person").fill(SUBJECT_OFFICE_1)
    page.get_by_role("button", name="Show").click()
    rows = page.locator("#subject-entries tbody tr")
    expect(rows.filter(has_text="PreTrialReportList")).to_have_count(1)
    for document in ("PreTrialReportStatus", "ReleaseCase"):
        row = rows.filter(has_text=document)
        expect(row).to_contain_text("Olga Probation")
        expect(row).to_contain_text("console:olga")
        expect(row).to_contain_text("probation_supervision")
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
    tab_to(page, 'a[href="/console/dead-letters"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(console.url + "/console/dead-letters")
    tab_to(page, f'input[value="{message_id}"]')
    page.keyboard.press("Space")
    tab_to(page, "#replay-form button", backwards=True)
    page.keyboard.press("Enter")
    expect(page.get_by_role("alertdialog")).to_be_visible()
    page.keyboard.press("Enter")  # the confirmation's Replay button has the focus
    expect(page.get_by_role("status")).to_contain_text("1 dead letter queued again.")
    _wait(console, lambda: _state(console, message_id) is MessageState.DELIVERED)


def test_a_message_is_found_and_opened_with_the_keyboard_alone(console, page):
    message_id = _dead_letter(console, {"notice": "keyboard"}, message_id="msg-keyboard")
    page.goto(console.url + "/console/login")
    page.keyboard.type("aliya")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(console.url + "/console/dashboard")
    tab_to(page, 'a[href="/console/messages"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(console.url + "/console/messages")
    tab_to(page, "#f-recipient")
    page.keyboard.type("health")
    page.keyboard.press("Enter")  # submits the search
    expect(page).to_have_url(re.compile(r"/console/messages\?.*recipient=health"))
    tab_to(page, f'a[href="/console/messages/{message_id}"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{console.url}/console/messages/{message_id}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    tab_to(page, 'a[href="/console/dashboard"]', backwards=True)  # and back through the menu
    page.keyboard.press("Enter")
    expect(page).to_have_url(console.url + "/console/dashboard")


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


def _show_payload(page: Page) -> None:
    page.get_by_label("Reason").fill("the receiver refused the notice as malformed")
    page.get_by_role("button", name="Show payload").click()
    expect(page.locator("pre.payload")).to_be_visible()


def _confirm_replay(page: Page) -> None:
    page.get_by_label("Select msg-0001").check()
    page.get_by_role("button", name="Replay selected…").click()
    expect(page.get_by_role("alertdialog")).to_be_visible()


# Each screen: who, the path, what to do there first, and its screenshot's name.
_SCREENS = (
    ("aliya", "dashboard", None, "dashboard"),
    ("aliya", "messages", None, "messages"),
    ("aliya", "messages/msg-0001", _show_payload, "message"),
    ("aliya", "dead-letters", None, "dead-letters"),
    ("aliya", "dead-letters", _confirm_replay, "dead-letters-confirm"),
    ("aliya", "release-cases", None, "release-cases"),
    ("aliya", "indicators", None, "indicators"),
    ("olga", "pretrial", None, "pretrial"),
    ("olga", "pretrial/new", None, "pretrial-new"),
    ("olga", "release-cases/rc-office1", None, "release-cases-rc-office1"),
    ("oskar", f"oversight?iin={SUBJECT_OFFICE_1}", None, "oversight"),
    ("oskar", "audit", None, None),
    ("aida", "audit?verify=1", None, "audit"),
)


def test_every_console_page_has_no_serious_or_critical_accessibility_violation(fresh_console, page, sign_in):
    console = fresh_console  # the screenshots show a gateway that only this test used
    assert AXE.is_file(), "axe-core is missing: run npm ci"
    _dead_letter(console, {"notice": "payload-marker-42"})
    console.call(console.gateway.audit.sign_tree_head())
    axe = AXE.read_text(encoding="utf-8")
    found = {}
    signed_in = None
    for user, path, step, shot in ((None, "login", None, "login"), *_SCREENS):
        if user != signed_in:
            page.context.clear_cookies()
            if user:
                sign_in(user, at=console.url)
            signed_in = user
        page.goto(f"{console.url}/console/{path}")
        if step is not None:
            step(page)
        page.evaluate(axe)
        result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
        serious = [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result
                   if v["impact"] in ("serious", "critical")]
        if serious:
            found[shot or path] = serious
        if shot:
            _shot(page, shot)
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("path", ["/console/login", "/console/dashboard"])
def test_pages_forbid_framing_and_inline_script(console, page, path):
    response = page.goto(console.url + path)
    headers = response.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
