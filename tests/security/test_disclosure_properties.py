"""Property: for random canonical documents, every (recipient role, purpose) gets nothing the policy forbids.

Documents are built from the synthetic population's people with random variations, then
mutated the way a defective codec or a careless caller might: expunged convictions slipped
into lists, and unknown keys carrying sensitive-looking values put anywhere. The oracle
is independent of the policy's own matcher: a plain recursive glob over the patterns of
config/policy.toml.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.population import Population
from gateway.config import PURPOSES, RecipientRole, load_config
from gateway.domain import (
    Address,
    AssistanceCategory,
    AssistanceReferral,
    Attachment,
    AttachmentState,
    ContinuityHold,
    ContinuityOfCareNotice,
    Conviction,
    CriminalCodeArticle,
    CustodyBasis,
    CustodyEpisode,
    Disability,
    DispensaryRegistration,
    DrugSusceptibility,
    Education,
    EmploymentNotice,
    EmploymentStatus,
    HealthFlags,
    HealthSummary,
    Housing,
    HousingKind,
    IdentityDocument,
    MaritalStatus,
    NeedLevel,
    Organisation,
    PreTrialReport,
    PretrialCase,
    ProbationNotice,
    ReleaseEvent,
    Programme,
    ReferralOutcome,
    ReferralStatus,
    ReleaseNotice,
    ReleaseType,
    ReportSection,
    ReportSections,
    RiskBand,
    RiskNeeds,
    SectionProvenance,
    Sentence,
    SentenceKind,
    SocialStatus,
    SourceStatus,
)
from gateway.resources import resource_dir
from gateway.security.disclosure import DisclosureDenied, DisclosurePolicy

POLICY_CONFIG = load_config(resource_dir("config"), environ={}).policy
POLICY = DisclosurePolicy(POLICY_CONFIG)
PEOPLE = Population(size=400).people
ROLES = get_args(RecipientRole)
LEGAL_BASES = (None, "CPC art. 73", "cpc  ART. 73", "CPC art. 74", "по запросу суда")
IIN_SHAPED = re.compile(r"(?<!\d)\d{12}(?!\d)")
ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9]{1,2})?$")

# ---------------------------------------------------------------- strategies

# Free text without digits, so that no twelve-digit run appears by chance.
texts = st.text(alphabet="абвгдеәғқңөұүһіжзAbcXYZ -", min_size=1, max_size=16).map(str.strip).filter(bool)
dates = st.dates(min_value=dt.date(1995, 1, 1), max_value=dt.date(2030, 12, 31))
moments = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC))
organisations = st.builds(Organisation, code=texts, name=texts)
people = st.sampled_from(PEOPLE)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


addresses = st.builds(
    Address,
    kato=optional(st.from_regex(r"[0-9]{9}", fullmatch=True)),
    region=optional(texts),
    locality=texts,
    street=optional(texts),
    house=optional(st.from_regex(r"[0-9]{1,3}", fullmatch=True)),
    flat=optional(st.from_regex(r"[0-9]{1,3}", fullmatch=True)),
    raw=optional(texts),
)
articles = st.builds(
    CriminalCodeArticle,
    article=st.from_regex(r"[0-9]{1,3}(-[0-9])?", fullmatch=True),
    part=optional(st.integers(1, 5)),
    paragraph=optional(st.integers(1, 5)),
)


@st.composite
def sentences(draw) -> Sentence:
    kind = draw(st.sampled_from(SentenceKind))
    term = None if kind is SentenceKind.LIFE_IMPRISONMENT else draw(optional(st.integers(1, 300)))
    return Sentence(kind=kind, term_months=term, suspended=draw(st.booleans()))


def convictions(expunged: bool = False) -> st.SearchStrategy:
    return st.builds(
        Conviction,
        articles=st.lists(articles, min_size=1, max_size=2).map(tuple),
        court=texts,
        judgment_date=dates,
        sentence=sentences(),
        expunged=st.just(expunged),
    )


@st.composite
def custody_episodes(draw) -> CustodyEpisode:
    admitted = draw(dates)
    released = draw(optional(st.integers(0, 3000).map(lambda days: admitted + dt.timedelta(days=days))))
    return CustodyEpisode(
        facility=draw(organisations),
        basis=draw(st.sampled_from(CustodyBasis)),
        admission_date=admitted,
        release_date=released,
        release_type=draw(optional(st.sampled_from(ReleaseType))) if released else None,
    )


@st.composite
def registrations(draw) -> DispensaryRegistration:
    programme = draw(st.sampled_from(Programme))
    return DispensaryRegistration(
        programme=programme,
        icd10=draw(st.from_regex(r"[A-Z][0-9]{2}(\.[0-9]{1,2})?", fullmatch=True)),
        since=draw(dates),
        regimen=draw(optional(texts)),
        last_dose=draw(optional(dates)),
        days_supplied=draw(optional(st.integers(0, 90))),
        drug_susceptibility=draw(optional(st.sampled_from(DrugSusceptibility))) if programme is Programme.TB else None,
    )


disabilities = st.builds(Disability, group=st.sampled_from((1, 2, 3)), valid_until=optional(dates))


def health_summaries(iin: str) -> st.SearchStrategy:
    return st.builds(
        HealthSummary, iin=st.just(iin), registrations=st.lists(registrations(), max_size=3).map(tuple),
        disability=optional(disabilities),
    )


def health_flags(iin: str) -> st.SearchStrategy:
    return st.builds(HealthFlags, iin=st.just(iin), continuous_treatment=st.booleans(),
                     disability=optional(disabilities))


@st.composite
def housings(draw) -> Housing:
    available = draw(st.booleans())
    return Housing(available=available, kind=draw(optional(st.sampled_from(HousingKind))) if available else None)


def social_statuses(iin: str) -> st.SearchStrategy:
    return st.builds(
        SocialStatus,
        iin=st.just(iin),
        marital_status=optional(st.sampled_from(MaritalStatus)),
        dependants=optional(st.integers(0, 8)),
        housing=optional(housings()),
        identity_documents=st.lists(st.sampled_from(IdentityDocument), max_size=2).map(tuple),
        education=optional(st.sampled_from(Education)),
        specialty=optional(texts),
        employment=optional(st.sampled_from(EmploymentStatus)),
        benefits=st.lists(texts, max_size=2).map(tuple),
    )


risk_needs = st.builds(
    RiskNeeds, instrument=texts, assessment_date=dates, score=st.integers(0, 60), band=st.sampled_from(RiskBand),
    **{name: st.sampled_from(NeedLevel) for name in (
        "criminal_history", "education_employment", "family_marital", "leisure_recreation", "companions",
        "alcohol_drug", "procriminal_attitude", "antisocial_pattern",
    )},
)


@st.composite
def pretrial_reports(draw) -> PreTrialReport:
    person = draw(people)
    iin = person.iin
    candidates = {
        ReportSection.IDENTITY: st.just(person.person),
        ReportSection.CRIMINAL_HISTORY: st.lists(convictions(), max_size=3).map(tuple),
        ReportSection.CUSTODY_HISTORY: st.lists(custody_episodes(), max_size=3).map(tuple),
        ReportSection.SOCIAL_SITUATION: social_statuses(iin),
        ReportSection.HEALTH_SUMMARY: health_summaries(iin) | health_flags(iin),
        ReportSection.RISK_NEEDS: risk_needs,
        ReportSection.OFFICER_CONCLUSION: texts,
    }
    content = {section: draw(optional(strategy)) for section, strategy in candidates.items()}
    provenance = {
        section: SectionProvenance(source=draw(texts), fetched_at=draw(moments), status=SourceStatus.OK)
        if value is not None
        else SectionProvenance(source=draw(texts), fetched_at=draw(moments), status=SourceStatus.UNAVAILABLE,
                               reason=draw(texts))
        for section, value in content.items()
    }
    return PreTrialReport(
        report_id=draw(texts),
        version=draw(st.integers(1, 5)),
        case=PretrialCase(erdr_number=draw(st.from_regex(r"[0-9]{15}", fullmatch=True)),
                          registration_date=draw(optional(dates)),
                          articles=tuple(draw(st.lists(articles, max_size=2)))),
        subject=person.person,
        requesting_body=draw(organisations),
        court=draw(organisations),
        due_date=draw(dates),
        sections=ReportSections(**{section.value: value for section, value in content.items()}),
        provenance=provenance,
    )


@st.composite
def release_notices(draw) -> ReleaseNotice:
    person = draw(people)
    if person.release is not None and draw(st.booleans()):
        return person.release
    planned = draw(dates)
    return ReleaseNotice(
        iin=person.iin,
        facility=draw(organisations),
        release_type=draw(st.sampled_from(ReleaseType)),
        planned_date=planned,
        actual_date=draw(optional(dates)),
        destination=draw(st.just(person.residence) | addresses),
        housing=draw(housings()),
        identity_documents=tuple(draw(st.lists(st.sampled_from(IdentityDocument), max_size=2))),
        education=draw(optional(st.sampled_from(Education))),
        specialty=draw(optional(texts)),
        probation_office=draw(optional(organisations)),
    )


@st.composite
def continuity_notices(draw) -> ContinuityOfCareNotice:
    person = draw(people)
    attachment = draw(optional(st.builds(
        Attachment, iin=st.just(person.iin), clinic=organisations, since=dates, state=st.sampled_from(AttachmentState),
        continuity_hold=optional(st.builds(ContinuityHold, id=texts, until=dates)),
    )))
    return ContinuityOfCareNotice(
        person=person.person,
        release_date=draw(dates),
        residence=draw(st.just(person.residence) | addresses),
        health=draw(health_summaries(person.iin)),
        attachment=attachment,
        receiving_clinic=draw(organisations),
        acknowledge_by=draw(moments),
    )


@st.composite
def employment_notices(draw) -> EmploymentNotice:
    person = draw(people)
    if person.release is not None and draw(st.booleans()):
        return EmploymentNotice.from_release(person.release, person.person, as_of=dt.date(2026, 11, 26))
    return EmploymentNotice(age=draw(st.integers(14, 90)), release_date=draw(dates), residence=draw(addresses),
                            education=draw(optional(st.sampled_from(Education))), specialty=draw(optional(texts)))


@st.composite
def assistance_referrals(draw) -> AssistanceReferral:
    status = draw(st.sampled_from(ReferralStatus))
    return AssistanceReferral(
        referral_id=draw(texts), iin=draw(people).iin, category=draw(st.sampled_from(AssistanceCategory)),
        provider=draw(organisations), referral_date=draw(dates), reason=draw(optional(texts)), status=status,
        outcome=draw(st.sampled_from(ReferralOutcome)) if status is ReferralStatus.COMPLETED else None,
    )


@st.composite
def probation_notices(draw) -> ProbationNotice:
    person = draw(people)
    return ProbationNotice(
        event=draw(st.sampled_from(ReleaseEvent)), person=person.person, release_type=draw(st.sampled_from(ReleaseType)),
        release_date=draw(dates), facility=draw(organisations), destination=draw(st.just(person.residence) | addresses),
        probation_office=draw(organisations),
    )


documents = st.one_of(
    pretrial_reports(), release_notices(), continuity_notices(), employment_notices(), assistance_referrals(),
    probation_notices(),
)

# Values a defective codec or a careless caller might leave in a payload.
SMUGGLED_KEYS = ("iin", "icd10", "diagnosis", "criminal_history", "convictions", "custody_history", "case",
                 "surname", "regimen", "expunged", "notes", "[]", "a.b")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | texts | st.sampled_from(("B20", "F11.2", "188")),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(SMUGGLED_KEYS), children,
                                                                      max_size=3),
    max_leaves=6,
)


def _containers(value: Any) -> list[Any]:
    found = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found.extend(_containers(item))
    elif isinstance(value, list):
        found.append(value)
        for item in value:
            found.extend(_containers(item))
    return found


@st.composite
def mutated(draw, document) -> dict:
    """The document's JSON dump, with expunged convictions and unknown keys slipped in."""
    payload = json.loads(json.dumps(document.model_dump(mode="json")))
    history = (payload.get("sections") or {}).get("criminal_history")
    if isinstance(history, list):
        # Where convictions belong: an allow-list that lets the court see them must not help.
        for conviction in draw(st.lists(convictions(expunged=True), max_size=2)):
            history.insert(draw(st.integers(0, len(history))), conviction.model_dump(mode="json"))
    for _ in range(draw(st.integers(0, 4))):
        container = draw(st.sampled_from(_containers(payload)))
        if draw(st.booleans()):
            smuggled: Any = draw(convictions(expunged=True)).model_dump(mode="json")
        else:
            smuggled = draw(json_values)
        if isinstance(container, dict):
            container.setdefault(draw(st.sampled_from(SMUGGLED_KEYS)), smuggled)
        else:
            container.insert(draw(st.integers(0, len(container))), smuggled)
    return payload


# ---------------------------------------------------------------- the independent oracle


def _tokens(dotted: str) -> list[str]:
    tokens = []
    for segment in dotted.split("."):
        name = segment.rstrip("[]")
        tokens.append(name)
        tokens.extend(["[]"] * ((len(segment) - len(name)) // 2))
    return tokens


def _glob(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_glob(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    if head == "*":
        return path[0] != "[]" and _glob(rest, path[1:])
    return head == path[0] and _glob(rest, path[1:])


def _leaves(value: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in _leaves(item, [*path, key])]
    if isinstance(value, list) and value:
        return [leaf for item in value for leaf in _leaves(item, [*path, "[]"])]
    return [(path, value)]


def _allowed(patterns: list[list[str]], path: list[str], value: Any) -> bool:
    if any(_glob(pattern, path) for pattern in patterns):
        return True
    # An empty value may stand where a pattern reaches below it.
    empty = value is None or value == [] or value == {}
    return empty and any(_glob(pattern[:k], path) for pattern in patterns for k in range(len(pattern)))


def _holds_expunged(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("expunged") is True or any(_holds_expunged(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_expunged(item) for item in value)
    return False


def _cites(basis: str, legal_basis: str | None) -> bool:
    return legal_basis is not None and " ".join(legal_basis.split()).casefold() == basis.casefold()


def _allow_list(role: str, purpose: str, document_type: str, legal_basis: str | None) -> list[list[str]] | None:
    rule = POLICY_CONFIG.get(role, {}).get(purpose, {}).get(document_type)
    if rule is None:
        return None
    patterns = list(rule.allow)
    escalation = rule.with_legal_basis
    if escalation and any(_cites(basis, legal_basis) for basis in escalation.legal_bases):
        patterns += escalation.allow
    return [_tokens(pattern) for pattern in patterns]


# ---------------------------------------------------------------- the property


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), document=documents, legal_basis=st.sampled_from(LEGAL_BASES))
def test_no_recipient_ever_gets_what_the_policy_does_not_allow(data, document, legal_basis):
    document_type = type(document).__name__
    payload = data.draw(mutated(document))
    subject = getattr(document, "iin", None) or getattr(getattr(document, "person", None), "iin", None) \
        or getattr(getattr(document, "subject", None), "iin", None)
    for role in ROLES:
        for purpose in PURPOSES:
            patterns = _allow_list(role, purpose, document_type, legal_basis)
            try:
                disclosure = POLICY.apply(document_type=document_type, payload=payload, recipient_role=role,
                                          purpose=purpose, legal_basis=legal_basis)
            except DisclosureDenied:
                assert patterns is None, f"{role}/{purpose} has a rule for {document_type} but was denied"
                continue
            assert patterns is not None, f"{role}/{purpose} got a {document_type} without a rule"
            output = disclosure.payload
            leaves = _leaves(output, [])
            for path, value in leaves:
                assert _allowed(patterns, path, value), f"{role}/{purpose} got {'.'.join(path)} of {document_type}"
            assert not _holds_expunged(output), f"{role}/{purpose} got an expunged conviction"
            assert set(disclosure.disclosed) == {".".join(path).replace(".[]", "[]") for path, _ in leaves}
            text = json.dumps(output, ensure_ascii=False)
            if role == "employment_centre":
                assert set(output) <= {"age", "release_date", "residence", "education", "specialty"}
                assert not IIN_SHAPED.search(text), "an IIN-shaped number went to an employment centre"
                assert subject is None or subject not in text
            if role == "court" and not _cites("CPC art. 73", legal_basis):
                health = (output.get("sections") or {}).get("health_summary") or {}
                assert "registrations" not in health, "diagnoses went to a court without a legal basis"
                assert not any(ICD10.match(str(value)) for path, value in _leaves(health, [])
                               if path and path[-1] == "icd10")
            if role in ("clinic", "employment_centre", "social", "health_authority"):
                assert not {"criminal_history", "custody_history", "case", "convictions"} & _keys(output)
            if role in ("employment_centre", "social"):
                assert not {"registrations", "icd10", "regimen", "diagnosis"} & _keys(output)


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


# What the workflows send, and to whom: the sender re-validates what the policy lets
# through, so for these the filtered document must still be a valid canonical document.
WORKFLOW_ROUTES = {
    "PreTrialReport": [("court", "pretrial_report")],
    "ContinuityOfCareNotice": [("clinic", "continuity_of_care"), ("health_authority", "continuity_of_care")],
    "EmploymentNotice": [("employment_centre", "employment_assistance")],
    "AssistanceReferral": [("social", "social_assistance")],
    "ProbationNotice": [("probation", "probation_supervision")],
    "ReleaseNotice": [],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, legal_basis=st.sampled_from(LEGAL_BASES))
def test_what_the_workflows_send_stays_a_valid_document_after_filtering(document, legal_basis):
    model = type(document)
    for role, purpose in WORKFLOW_ROUTES[model.__name__]:
        disclosure = POLICY.apply(document_type=model.__name__, payload=document.model_dump(mode="json"),
                                  recipient_role=role, purpose=purpose, legal_basis=legal_basis)
        model.model_validate(disclosure.payload)
