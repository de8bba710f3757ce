"""A probation officer asks for a pre-trial report in the console, of a gateway with the
workflows and every agency simulator, on SQLite and on PostgreSQL: errors beside the fields in
the officer's language, then the report assembled from the agencies' answers and its document
in Russian and Kazakh; the same request made with the keyboard alone.

One system per store for the module (a system is slow to start); each test uses its own
request key, so the tests do not see each other's reports."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from playwright.sync_api import Page, expect

from backends import Backend
from console.harness import PASSWORD, ConsoleSystem, tab_to
from gateway.workflows import pretrial
from workflow_steps import SUSPECT

COURT = ("COURT-ALM-2", "Алматы қаласының №2 аудандық соты")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def system(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"console-{request.param}")
    backend = Backend(request.param, directory)
    if request.param == "postgres":
        request.getfixturevalue("postgres_reachable")
    started = ConsoleSystem(directory, backend.fresh_url() if request.param == "postgres" else None)
    yield started
    started.close()
    backend.discard_all()


@pytest.fixture
def officer(browser, system):
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(system.url + "/console/login")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(system.url + "/console/pretrial")
    yield page
    context.close()


def _today(system) -> dt.date:
    return dt.datetime.fromtimestamp(system.clock(), dt.UTC).date()


def _fill(page: Page, iin: str, erdr: str, due: str) -> None:
    page.locator("#f-subject_iin").fill(iin)
    page.locator("#f-erdr_number").fill(erdr)
    page.locator("#f-court_code").fill(COURT[0])
    page.locator("#f-court_name").fill(COURT[1])
    page.locator("#f-due_date").fill(due)


def _error(page: Page, field: str):
    return page.locator(f"#e-{field}")


def _assembled(system, report_id: str, timeout: float = 30.0):
    """The report's case once a version has been assembled (the agencies answered)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        case = system.call(system.gateway.store.get_case(pretrial.KIND, report_id))
        if case is not None and case.data.get("report") is not None and case.state in pretrial.FINAL_STATES:
            return case
        time.sleep(0.05)
    raise AssertionError(f"report {report_id} was not assembled within {timeout} s")


def test_a_report_requested_in_the_form_is_assembled_and_opens_in_russian_and_kazakh(system, officer):
    page = officer
    page.get_by_role("link", name="Request a report").click()
    expect(page).to_have_url(system.url + "/console/pretrial/new")
    # Every field wrong: each says what to fix, next to it, and nothing is requested.
    _fill(page, "900215400282", "12345", (_today(system) - dt.timedelta(days=1)).isoformat())
    page.locator("#f-court_name").fill("")
    page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_role("alert")).to_contain_text("The request was not sent")
    expect(_error(page, "subject_iin")).to_have_text("The last digit does not match the others: check the number.")
    expect(page.locator("#f-subject_iin")).to_have_attribute("aria-describedby", "e-subject_iin")
    expect(_error(page, "erdr_number")).to_have_text("An ERDR number has exactly 15 digits.")
    expect(_error(page, "court_name")).to_have_text("Fill in this field.")
    # A valid request but for the due date: the workflow's own check, by the gateway's clock.
    _fill(page, SUSPECT.iin, SUSPECT.pretrial_case.erdr_number, (_today(system) - dt.timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Send the request").click()
    expect(_error(page, "due_date")).to_have_text("The due date is in the past: give today or a later day.")
    expect(page.locator("#f-subject_iin")).to_have_value(SUSPECT.iin)  # what was typed stays
    _fill(page, SUSPECT.iin, SUSPECT.pretrial_case.erdr_number, (_today(system) + dt.timedelta(days=366)).isoformat())
    page.get_by_role("button", name="Send the request").click()
    expect(_error(page, "due_date")).to_have_text("The due date is too far ahead: at most 365 days from today.")
    assert not [c for c in system.call(system.gateway.store.list_cases(pretrial.KIND, limit=100))
                if c.data["request"]["subject_iin"] == SUSPECT.iin and c.data["request"]["requesting_body"]["code"]
                == "PO-ALM-1"], "a refused request was stored"
    # The same mistakes, in Russian and in Kazakh.
    for language, name, iin_error, due_error in (
        ("Русский", "Отправить запрос", "Последняя цифра не сходится с остальными: проверьте номер.",
         "Срок уже прошёл: укажите сегодняшний или более поздний день."),
        ("Қазақ тілі", "Сұрауды жіберу", "Соңғы цифр қалғандарымен сәйкес келмейді: нөмірді тексеріңіз.",
         "Мерзімі өтіп кетті: бүгінгі немесе кейінгі күнді көрсетіңіз."),
    ):
        page.get_by_role("link", name=language).click()
        _fill(page, "900215400282", SUSPECT.pretrial_case.erdr_number,
              (_today(system) - dt.timedelta(days=3)).isoformat())
        page.get_by_role("button", name=name).click()
        expect(_error(page, "subject_iin")).to_have_text(iin_error)
        _fill(page, SUSPECT.iin, SUSPECT.pretrial_case.erdr_number, (_today(system) - dt.timedelta(days=3)).isoformat())
        page.get_by_role("button", name=name).click()
        expect(_error(page, "due_date")).to_have_text(due_error)
    page.get_by_role("link", name="English").click()
    # Now right: the report is requested, the agencies answer, and it is assembled.
    _fill(page, SUSPECT.iin, SUSPECT.pretrial_case.erdr_number, (_today(system) + dt.timedelta(days=30)).isoformat())
    page.locator("#f-officer_conclusion").fill("Сотталушы пробация қызметімен ынтымақтасуға дайын.")
    page.get_by_role("button", name="Send the request").click()
    expect(page).to_have_url(re.compile(r"/console/pretrial/ptr-[0-9a-f]{20}$"))
    report_id = page.url.rsplit("/", 1)[1]
    case = _assembled(system, report_id)
    assert case.state == pretrial.PretrialState.COMPLETE
    assert case.data["request"]["requesting_body"]["code"] == "PO-ALM-1"
    page.reload()
    provenance = page.get_by_role("table", name="Where each section came from").locator("tbody tr")
    expect(provenance).to_have_count(5)
    for source in ("interior", "penal", "health", "social"):
        expect(provenance.filter(has_text=source).first).to_contain_text("OK")
    receipt = case.data["versions"][0]["registration_number"]
    expect(page.get_by_role("table", name="Each version sent to the court")).to_contain_text(receipt)
    for language, title in (("ru", "Досудебный доклад"), ("kk", "Сотқа дейінгі баяндама")):
        page.locator("#main").get_by_role("link", name={"ru": "Русский", "kk": "Қазақша"}[language]).click()
        expect(page).to_have_url(f"{system.url}/console/pretrial/{report_id}/document?lang={language}")
        expect(page.locator("html")).to_contain_text(title)
        expect(page.locator("html")).to_contain_text(SUSPECT.person.surname)
        page.go_back()


def test_a_report_is_requested_with_the_keyboard_alone(system, browser):
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(system.url + "/console/login")
    page.keyboard.type("olga")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(system.url + "/console/pretrial")
    tab_to(page, 'a[href="/console/pretrial/new"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(system.url + "/console/pretrial/new")
    tab_to(page, "#f-subject_iin")
    due = _today(system) + dt.timedelta(days=20)
    for text in (SUSPECT.iin, SUSPECT.pretrial_case.erdr_number, *COURT):
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    # A date field takes its parts as typed digits, in the order of the browser's locale
    # (which need not be the page's language): month first or day first.
    for order in ("%m%d%Y", "%d%m%Y"):
        page.keyboard.type(due.strftime(order))
        if page.locator("#f-due_date").input_value() == due.isoformat():
            break
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")  # back to the field's first part, to type it over
    assert page.locator("#f-due_date").input_value() == due.isoformat()
    tab_to(page, 'form.stacked button[type="submit"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/pretrial/ptr-[0-9a-f]{20}$"))
    report_id = page.url.rsplit("/", 1)[1]
    case = _assembled(system, report_id)
    assert case.data["request"]["due_date"] == due.isoformat()
    page.reload()
    tab_to(page, f'a[href="/console/pretrial/{report_id}/document?lang=kk"]')
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_contain_text("Сотқа дейінгі баяндама")
    context.close()
