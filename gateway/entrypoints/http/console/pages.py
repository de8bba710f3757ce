"""The console's screens. Each handler checks the role, reads through the store or a use case,
records what the person was shown, and renders.

Who sees what (docs/console.md): operators the queues and message metadata, a payload only
when they give a reason; a probation officer the reports and release cases of their own
office (another office's case is "not found"); oversight the disclosures and the audit log,
never case content; auditors the audit log's proofs.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter

from aiohttp import web
from pydantic import ValidationError

from gateway.domain import InvalidIIN, validate_iin
from gateway.entrypoints.http.console import auth
from gateway.entrypoints.http.console.views import (
    DOCUMENT_SECURITY_POLICY,
    gettext_of,
    record_action,
    record_view,
    record_views,
    render,
    require,
    services,
)
from gateway.entrypoints.http.rendering import render_report
from gateway.security import merkle
from gateway.security.audit_keys import fingerprint
from gateway.services import oversight as oversight_service
from gateway.services.dead_letters import replay_dead_letters
from gateway.store import MessageQuery, MessageState
from gateway.workflows import pretrial, release
from gateway.workflows.pretrial import PretrialReportRequest

_PAGE = 25
_CASE_SCAN = 500
_RECENT_SECONDS = 3600
_SEQ_MAX = 2**63 - 1


def add_routes(app: web.Application, prefix: str) -> None:
    get, post = app.router.add_get, app.router.add_post
    get(prefix + "/dashboard", dashboard)
    get(prefix + "/dashboard/queues", dashboard_queues)
    get(prefix + "/messages", messages)
    get(prefix + "/messages/{message_id}", message)
    post(prefix + "/messages/{message_id}/payload", message_payload)
    get(prefix + "/dead-letters", dead_letters)
    post(prefix + "/dead-letters/replay", replay)
    get(prefix + "/pretrial", pretrial_reports)
    get(prefix + "/pretrial/new", pretrial_form)
    post(prefix + "/pretrial/new", pretrial_request)
    get(prefix + "/pretrial/{report_id}", pretrial_report)
    get(prefix + "/pretrial/{report_id}/document", pretrial_document)
    get(prefix + "/release-cases", release_cases)
    get(prefix + "/release-cases/{case_id}", release_case)
    get(prefix + "/oversight", oversight)
    get(prefix + "/audit", audit)
    get(prefix + "/indicators", indicators)


def _when(value: float | None) -> str:
    return "—" if value is None else dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _check_csrf(request: web.Request, signed) -> dict:
    form = await request.post()
    if not auth.tokens_match(signed.session.csrf_token, form.get("csrf")):
        raise web.HTTPForbidden()
    return form


# ---------------------------------------------------------------- dashboard


async def _queues(request: web.Request) -> dict:
    gateway = services(request)
    now = gateway.clock()
    counts = await gateway.store.counts()
    delivered = await gateway.store.delivered_since(now - _RECENT_SECONDS)
    breakers = gateway.engine.breaker_states()
    rows = []
    for member_id, member in sorted(gateway.config.members.items()):
        if not member.services:
            continue
        newest_dead = await gateway.store.search_messages(MessageQuery(recipient=member_id, state=MessageState.DEAD),
                                                          limit=1)
        breaker = breakers.get(member_id)
        rows.append({
            "member": member_id,
            "queued": counts.get((member_id, MessageState.ACCEPTED), 0),
            "in_flight": counts.get((member_id, MessageState.IN_FLIGHT), 0),
            "delivered": delivered.get(member_id, 0),
            "dead": counts.get((member_id, MessageState.DEAD), 0),
            "breaker": getattr(breaker, "name", str(breaker)).lower() if breaker is not None else "closed",
            "last_error": newest_dead[0].last_error if newest_dead else None,
        })
    try:
        await gateway.store.ping()
        store_ok = True
    except Exception:  # the page reports it; the store's error is logged by the store
        store_ok = False
    head = await gateway.audit.latest_tree_head() if store_ok else None
    chart = {"labels": [r["member"] for r in rows], "queued": [r["queued"] for r in rows],
             "dead": [r["dead"] for r in rows]}
    return {"rows": rows, "store_ok": store_ok, "head": head, "refreshed": _when(now),
            "chart": json.dumps(chart), "when": _when}


async def dashboard(request: web.Request) -> web.Response:
    require(request, "operator")
    return render(request, "dashboard.html", await _queues(request)
                  | {"refresh_seconds": services(request).config.console.dashboard_refresh_seconds})


async def dashboard_queues(request: web.Request) -> web.Response:
    require(request, "operator")
    return render(request, "dashboard_queues.html", await _queues(request))


# ---------------------------------------------------------------- messages


_SEARCH_FIELDS = ("message_id", "correlation_id", "sender", "recipient", "service")


def _parse_time(text: str) -> float:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _message_query(request: web.Request, *, state: MessageState | None = None) -> tuple[MessageQuery, dict, dict]:
    _ = gettext_of(request)
    query, errors = request.query, {}
    values = {name: query.get(name, "").strip() for name in (*_SEARCH_FIELDS, "status", "from", "until")}
    filters = {name: values[name] or None for name in _SEARCH_FIELDS}
    if state is None and values["status"]:
        try:
            state = MessageState(values["status"])
        except ValueError:
            errors["status"] = _("Choose one of the listed states.")
    times = {}
    for name in ("from", "until"):
        if values[name]:
            try:
                times[name] = _parse_time(values[name])
            except ValueError:
                errors[name] = _("Give a date and time as YYYY-MM-DDTHH:MM.")
    return (MessageQuery(**filters, state=state, accepted_from=times.get("from"), accepted_until=times.get("until")),
            values, errors)


def _cursor(request: web.Request) -> int | None:
    try:
        before = int(request.query.get("before", ""))
    except ValueError:
        return None
    return before if before > 0 else None


def _page_link(request: web.Request, before: int) -> str:
    query = {k: v for k, v in request.query.items() if k != "before"} | {"before": str(before)}
    return request.rel_url.with_query(query).path_qs


async def messages(request: web.Request) -> web.Response:
    require(request, "operator")
    found, values, errors = _message_query(request)
    items = [] if errors else await services(request).store.search_messages(found, before_seq=_cursor(request),
                                                                             limit=_PAGE)
    more = _page_link(request, items[-1].seq) if len(items) == _PAGE else None
    return render(request, "messages.html", {"items": items, "values": values, "errors": errors, "more": more,
                                             "states": list(MessageState), "when": _when})


async def _message_page(request: web.Request, signed, *, payload: str | None = None, reason_error: str | None = None,
                        status: int = 200) -> web.Response:
    gateway = services(request)
    found = await gateway.store.get_message(request.match_info["message_id"])
    if found is None:
        raise web.HTTPNotFound()
    attempts = await gateway.store.attempts(found.id)
    return render(request, "message.html", {"m": found, "attempts": attempts, "payload": payload,
                                            "reason_error": reason_error, "when": _when}, status=status)


async def message(request: web.Request) -> web.Response:
    signed = require(request, "operator")
    return await _message_page(request, signed)


def _readable(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except ValueError:
        return text


async def message_payload(request: web.Request) -> web.Response:
    """An operator sees a payload only with a reason, and that view is recorded."""
    signed = require(request, "operator")
    form = await _check_csrf(request, signed)
    reason = " ".join(str(form.get("reason", "")).split())[:500]
    _ = gettext_of(request)
    if len(reason) < 10:
        return await _message_page(request, signed, status=400,
                                   reason_error=_("Say why you need to see the payload (at least 10 characters)."))
    found = await services(request).store.get_message(request.match_info["message_id"])
    if found is None:
        raise web.HTTPNotFound()
    await record_view(request, signed, subject=None, fields=("body",), document_type="MessagePayload",
                      message_id=found.id, reason=reason)
    return await _message_page(request, signed, payload=_readable(found.body))


# ---------------------------------------------------------------- dead letters


async def _dead_letter_page(request: web.Request, *, result: dict | None = None,
                            confirm: dict | None = None) -> web.Response:
    found, values, errors = _message_query(request, state=MessageState.DEAD)
    items = [] if errors else await services(request).store.search_messages(found, before_seq=_cursor(request),
                                                                             limit=_PAGE)
    more = _page_link(request, items[-1].seq) if len(items) == _PAGE else None
    return render(request, "dead_letters.html", {"items": items, "values": values, "errors": errors, "more": more,
                                                 "result": result, "confirm": confirm, "when": _when})


async def dead_letters(request: web.Request) -> web.Response:
    require(request, "operator")
    return await _dead_letter_page(request)


async def replay(request: web.Request) -> web.Response:
    """Two steps: say how many and to whom, then replay on confirmation; the result on the same page."""
    signed = require(request, "operator")
    form = await _check_csrf(request, signed)
    gateway = services(request)
    ids = list(dict.fromkeys(str(i) for i in form.getall("ids", []) if i))[:500]
    _ = gettext_of(request)
    if not ids:
        return await _dead_letter_page(request, result={"error": _("Select at least one dead letter to replay.")})
    if form.get("step") != "replay":
        recipients = Counter()
        for message_id in ids:
            found = await gateway.store.get_message(message_id)
            if found is not None and found.state is MessageState.DEAD:
                recipients[found.recipient] += 1
        return await _dead_letter_page(request, confirm={"ids": ids, "count": sum(recipients.values()),
                                                         "recipients": sorted(recipients.items())})
    replayed, not_dead = await replay_dead_letters(gateway.store, now=gateway.clock(),
                                                   max_age_seconds=gateway.config.delivery.max_age_seconds,
                                                   message_ids=ids)
    await record_action(request, signed, action="dlq-replay", message_ids=replayed)
    return await _dead_letter_page(request, result={"replayed": replayed, "not_dead": not_dead})


# ---------------------------------------------------------------- pre-trial reports


def _office_of(case) -> str | None:
    return (case.data.get("request", {}).get("requesting_body") or {}).get("code")


async def _office_case(request: web.Request, signed, kind: str, case_id: str):
    """The case if it belongs to the officer's office; otherwise it does not exist for them."""
    case = await services(request).store.get_case(kind, case_id)
    if case is None:
        raise web.HTTPNotFound()
    office = _office_of(case) if kind == pretrial.KIND else ((case.data["notice"].get("probation_office") or {})
                                                              .get("code"))
    if signed.account.role == "probation_officer" and office != signed.account.office:
        raise web.HTTPNotFound()
    return case


async def _scan_cases(request: web.Request, kind: str, keep, *, state: str | None = None, after: str = ""):
    """Cases of ``kind`` that ``keep`` accepts, a page at a time (keyset on the case id)."""
    store = services(request).store
    kept, cursor = [], after
    for _round in range(_CASE_SCAN // 100):
        batch = await store.list_cases(kind, state=state, after_id=cursor, limit=100)
        for case in batch:
            if keep(case):
                kept.append(case)
                if len(kept) == _PAGE:
                    return kept, case.id
        if len(batch) < 100:
            return kept, None
        cursor = batch[-1].id
    return kept, cursor


_LIST_FIELDS = ("subject_iin", "erdr_number", "court", "due_date", "state")


async def pretrial_reports(request: web.Request) -> web.Response:
    signed = require(request, "probation_officer")
    office = signed.account.office
    cases, more = await _scan_cases(request, pretrial.KIND, lambda c: _office_of(c) == office,
                                    after=request.query.get("after", ""))
    await record_views(request, signed, ((c.data["request"]["subject_iin"], _LIST_FIELDS) for c in cases),
                       document_type="PreTrialReportList")
    next_link = request.rel_url.with_query({"after": more}).path_qs if more else None
    return render(request, "pretrial_list.html", {"cases": cases, "more": next_link,
                                                  "enabled": services(request).workflows is not None})


_FORM_FIELDS = ("subject_iin", "erdr_number", "court_code", "court_name", "due_date", "legal_basis",
                "officer_conclusion")


def _pretrial_form_page(request: web.Request, values: dict, errors: dict, status: int = 200) -> web.Response:
    return render(request, "pretrial_form.html", {"values": values, "errors": errors,
                                                  "enabled": services(request).workflows is not None},
                  status=status)


async def pretrial_form(request: web.Request) -> web.Response:
    require(request, "probation_officer")
    return _pretrial_form_page(request, {"request_key": str(uuid.uuid4())} | {f: "" for f in _FORM_FIELDS}, {})


def _probation_member(request: web.Request) -> str | None:
    members = services(request).config.members
    return next((member_id for member_id, member in members.items() if member.role == "probation"), None)


async def pretrial_request(request: web.Request) -> web.Response:
    """The same request the API takes, validated by the same model; errors next to their field."""
    signed = require(request, "probation_officer")
    form = await _check_csrf(request, signed)
    gateway = services(request)
    values = {f: str(form.get(f, "")).strip() for f in _FORM_FIELDS} | {
        "request_key": str(form.get("request_key", "")) or str(uuid.uuid4())}
    document = {
        "subject_iin": values["subject_iin"], "erdr_number": values["erdr_number"],
        "court": {"code": values["court_code"], "name": values["court_name"]},
        "requesting_body": {"code": signed.account.office, "name": signed.account.office},
        "due_date": values["due_date"] or None,
        "legal_basis": values["legal_basis"] or None,
        "officer_conclusion": values["officer_conclusion"] or None,
    }
    try:
        wanted = PretrialReportRequest.model_validate(document)
    except ValidationError as exc:
        return _pretrial_form_page(request, values, _field_errors(request, exc), status=400)
    caller = _probation_member(request)
    if gateway.workflows is None or caller is None:
        raise web.HTTPNotFound()
    try:
        case, _duplicate = await gateway.workflows.pretrial.request(wanted, caller=caller,
                                                                    request_key=f"console:{values['request_key']}")
    except pretrial.DueDateRefused as refused:
        return _pretrial_form_page(request, values, {"due_date": _due_date_message(request, refused.defect)},
                                   status=400)
    await record_action(request, signed, action="pretrial-request", reason=f"report {case.id}")
    raise web.HTTPSeeOther(f"/console/pretrial/{case.id}")


def _due_date_message(request: web.Request, defect: str) -> str:
    _ = gettext_of(request)
    if defect == "past":
        return _("The due date is in the past: give today or a later day.")
    days = services(request).config.workflows.pretrial.max_due_days
    return _("The due date is too far ahead: at most %(days)d days from today.") % {"days": days}


def _iin_problems(request: web.Request) -> dict[str, str]:
    """What each IINDefect means, in the person's language."""
    _ = gettext_of(request)
    return {
        "character": _("An IIN has digits only."),
        "length": _("An IIN has exactly 12 digits."),
        "century": _("The 7th digit (century and sex) must be 1 to 6."),
        "birth_date": _("The first six digits are not a birth date."),
        "check_digit": _("The last digit does not match the others: check the number."),
        "unissuable": _("No IIN of this form is ever issued: check the number."),
    }


def _field_errors(request: web.Request, exc: ValidationError) -> dict[str, str]:
    """Each field's first problem, in the person's language (the model's messages are English)."""
    _ = gettext_of(request)
    iin_defects = _iin_problems(request)
    errors: dict[str, str] = {}
    for error in exc.errors():
        location = [str(p) for p in error["loc"]]
        name = "_".join(location[:2]) if location and location[0] == "court" else (location or ["form"])[0]
        kind, context = error["type"], error.get("ctx") or {}
        if name == "subject_iin":
            text = iin_defects.get(context.get("defect"), _("This is not a valid IIN."))
        elif name == "erdr_number":
            text = _("An ERDR number has exactly 15 digits.")
        elif name == "due_date" and kind in ("greater_than_equal", "less_than_equal"):
            text = _("The due date is out of range: give a date between 1900 and 2100.")
        elif name == "due_date":
            text = _("Give a date as YYYY-MM-DD.")
        elif kind in ("missing", "string_too_short"):
            text = _("Fill in this field.")
        elif kind == "string_too_long":
            text = _("This is too long: at most %(max)d characters.") % {"max": context.get("max_length", 0)}
        else:
            text = _("This value is not accepted: check it.")
        errors.setdefault(name, text)
    return errors


async def pretrial_report(request: web.Request) -> web.Response:
    signed = require(request, "probation_officer")
    case = await _office_case(request, signed, pretrial.KIND, request.match_info["report_id"])
    data = case.data
    await record_view(request, signed, subject=data["request"]["subject_iin"],
                      fields=("request", "sections.status", "versions"), document_type="PreTrialReportStatus")
    return render(request, "pretrial_report.html", {"case": case, "request_data": data["request"],
                                                    "sections": data.get("sections", {}),
                                                    "versions": data.get("versions", []),
                                                    "has_document": data.get("report") is not None,
                                                    "when": _when})


async def pretrial_document(request: web.Request) -> web.Response:
    signed = require(request, "probation_officer")
    case = await _office_case(request, signed, pretrial.KIND, request.match_info["report_id"])
    language = request.query.get("lang", "ru")
    report = case.data.get("report")
    if language not in ("ru", "kk") or report is None:
        raise web.HTTPNotFound()
    # The same read as GET /api/v1/pretrial-reports/{id}/document: filtered for a probation
    # office, audited under the officer's account (gateway.services.report_reading).
    document = await services(request).report_reader.read(
        report, reader=signed.actor, reader_role="probation", subject_iin=case.data["request"]["subject_iin"],
        legal_basis=case.data["request"].get("legal_basis"), case_id=case.id, service="console")
    response = web.Response(text=render_report(document, language), content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = DOCUMENT_SECURITY_POLICY
    return response


# ---------------------------------------------------------------- release cases


def _release_row(case) -> dict:
    notice = case.data["notice"]
    return {
        "id": case.id, "state": case.state, "facility": notice["facility"]["code"],
        "release_type": notice["release_type"], "release_date": notice.get("actual_date") or notice["planned_date"],
        "region": notice["destination"].get("region"), "updated_at": case.updated_at,
        "office": (notice.get("probation_office") or {}).get("code"),
    }


async def release_cases(request: web.Request) -> web.Response:
    signed = require(request, "operator", "probation_officer")
    _ = gettext_of(request)
    query = request.query
    values = {name: query.get(name, "").strip() for name in ("state", "facility", "region", "from", "until")}
    errors = {}
    if values["state"] and values["state"] not in set(release.ReleaseState):
        errors["state"] = _("Choose one of the listed states.")
    for name in ("from", "until"):
        if values[name]:
            try:
                dt.date.fromisoformat(values[name])
            except ValueError:
                errors[name] = _("Give a date as YYYY-MM-DD.")
    office = signed.account.office if signed.account.role == "probation_officer" else None

    def keep(case) -> bool:
        row = _release_row(case)
        return ((office is None or row["office"] == office)
                and (not values["facility"] or row["facility"] == values["facility"])
                and (not values["region"] or row["region"] == values["region"])
                and (not values["from"] or row["release_date"] >= values["from"])
                and (not values["until"] or row["release_date"] <= values["until"]))

    cases, more = ([], None) if errors else await _scan_cases(
        request, release.KIND, keep, state=values["state"] or None, after=query.get("after", ""))
    next_link = None
    if more:
        next_link = request.rel_url.with_query({k: v for k, v in query.items() if k != "after"} | {"after": more}).path_qs
    return render(request, "release_list.html", {"rows": [_release_row(c) for c in cases], "values": values,
                                                 "errors": errors, "more": next_link,
                                                 "states": list(release.ReleaseState), "when": _when})


async def release_case(request: web.Request) -> web.Response:
    signed = require(request, "operator", "probation_officer")
    case = await _office_case(request, signed, release.KIND, request.match_info["case_id"])
    notice = case.data["notice"]
    shows_person = signed.account.role == "probation_officer"
    fields = ["facility", "release_type", "release_date", "destination.region", "events"]
    if shows_person:
        fields.append("iin")
    await record_view(request, signed, subject=notice["iin"], fields=fields, document_type="ReleaseCase")
    return render(request, "release_case.html", {"row": _release_row(case), "data": case.data,
                                                 "iin": notice["iin"] if shows_person else None, "when": _when})


# ---------------------------------------------------------------- oversight and audit


async def oversight(request: web.Request) -> web.Response:
    signed = require(request, "oversight")
    _ = gettext_of(request)
    text = request.query.get("iin", "").strip()
    context: dict = {"iin": text, "error": None, "entries": None, "more": None, "names": {}}
    if text:
        try:
            iin = str(validate_iin(text))
        except InvalidIIN as exc:
            context["error"] = _iin_problems(request).get(exc.defect.value, _("This is not a valid IIN."))
        else:
            gateway = services(request)
            try:
                after = min(max(0, int(request.query.get("after", "0"))), _SEQ_MAX)
            except ValueError:
                after = 0
            # A page and one more, read by (subject, seq) from the index: never every entry.
            entries = await oversight_service.subject_disclosures(
                gateway.audit, iin, viewer=signed.actor, viewer_role=signed.account.role,
                gateway_member=gateway.config.server.member_id, reason="console oversight subject report",
                correlation_id=request.headers.get("X-Correlation-Id"), after_seq=after, limit=_PAGE + 1)
            shown = entries[:_PAGE]
            context["entries"] = [entry.as_json() for entry in shown]
            context["total"] = len(shown)
            if len(entries) > _PAGE:
                context["more"] = request.rel_url.with_query({"iin": iin, "after": str(shown[-1].seq)}).path_qs
            accounts = {a.username: a.display_name for a in await gateway.store.console_accounts()}
            context["names"] = {f"console:{username}": name for username, name in accounts.items()}
    return render(request, "oversight.html", context)


def _head_view(head) -> dict | None:
    if head is None:
        return None
    return {"size": head.size, "root": head.root.hex(), "signature": head.signature.hex(),
            "signed_at": _when(head.signed_at)}


async def audit(request: web.Request) -> web.Response:
    require(request, "oversight", "auditor")
    _ = gettext_of(request)
    gateway = services(request)
    head = await gateway.audit.latest_tree_head()
    context: dict = {
        "head": _head_view(head),
        "keys": [fingerprint(key) for key in gateway.audit.keys.verification_keys],
        "report": None, "proof": None, "proof_error": None,
        "old": request.query.get("old", ""), "new": request.query.get("new", ""),
    }
    if request.query.get("verify"):
        context["report"] = await gateway.audit.verify()
    if context["old"] or context["new"]:
        try:
            old, new = int(context["old"]), int(context["new"])
            heads = [await gateway.store.tree_heads(size - 1, 1) for size in (old, new)]
            if not all(h and h[0].size == s for h, s in zip(heads, (old, new), strict=True)):
                raise ValueError(_("No signed tree head at one of these sizes."))
            proof = await gateway.audit.consistency_proof(old, new)
            merkle.verify_consistency(old, new, heads[0][0].root, heads[1][0].root, proof)
            context["proof"] = {"old": _head_view(heads[0][0]), "new": _head_view(heads[1][0]),
                                "nodes": [node.hex() for node in proof]}
        except (ValueError, merkle.ProofError) as exc:
            context["proof_error"] = str(exc) if str(exc) else _("Give two sizes, the older first.")
    return render(request, "audit.html", context)


async def indicators(request: web.Request) -> web.Response:
    require(request, "operator", "probation_officer", "oversight", "auditor")
    return render(request, "indicators.html")
