"""Hypothesis strategies for the canonical records the SOAP codecs carry.

Text is drawn from Kazakh and Russian Cyrillic (ә ғ қ ң ө ұ ү һ і among them), Latin letters,
digits and the punctuation agencies write, so every round trip is also a test that those
letters survive.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from gateway.domain import (
    Address,
    Conviction,
    CriminalCodeArticle,
    CustodyBasis,
    CustodyEpisode,
    Disability,
    DispensaryRegistration,
    DrugSusceptibility,
    Education,
    EmploymentStatus,
    HealthFlags,
    HealthSummary,
    Housing,
    HousingKind,
    IdentityDocument,
    MaritalStatus,
    NeedLevel,
    Organisation,
    Person,
    PreTrialReport,
    PretrialCase,
    Programme,
    ReleaseEvent,
    ReleaseNotice,
    ReleaseType,
    ReportSection,
    ReportSections,
    RiskBand,
    RiskNeeds,
    SectionProvenance,
    Sentence,
    SentenceKind,
    Sex,
    SocialStatus,
    SourceStatus,
    make_iin,
)

KAZAKH_LETTERS = "әғқңөұүһіӘҒҚҢӨҰҮҺІ"
_LETTERS = KAZAKH_LETTERS + "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ" + "abcxyzABCXYZ"
_TEXT_ALPHABET = _LETTERS + "0123456789 -.,№/()«»'\"&<>"

letters = st.text(alphabet=_LETTERS, min_size=1, max_size=20)
text = st.text(alphabet=_TEXT_ALPHABET, min_size=1, max_size=60).map(str.strip).filter(bool)
narrative = st.text(alphabet=_TEXT_ALPHABET + "\n\t", min_size=1, max_size=300).map(str.strip).filter(bool)
dates = st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2040, 12, 31))
moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1), timezones=st.just(dt.UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
digits = lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)  # noqa: E731

iins = st.builds(
    make_iin,
    st.dates(min_value=dt.date(1940, 1, 1), max_value=dt.date(2010, 12, 31)),
    st.sampled_from(Sex),
    st.integers(0, 9999),
).filter(lambda iin: iin is not None)

organisations = st.builds(Organisation, code=text, name=text)
addresses = st.builds(
    Address,
    kato=st.none() | digits(9),
    region=st.none() | text,
    locality=st.none() | text,
    street=st.none() | text,
    house=st.none() | text,
    flat=st.none() | text,
    raw=text,
)
housings = st.booleans().flatmap(
    lambda available: st.builds(Housing, available=st.just(available), kind=st.none() | st.sampled_from(HousingKind))
    if available
    else st.just(Housing(available=False))
)
documents = st.lists(st.sampled_from(IdentityDocument), max_size=3).map(tuple)


@st.composite
def persons(draw, iin=None):
    iin = iin or draw(iins)
    return Person(
        iin=iin,
        surname=draw(letters),
        given_name=draw(letters),
        patronymic=draw(st.none() | letters),
        birth_date=iin.birth_date,
        sex=iin.sex,
        citizenship=draw(st.sampled_from(("KAZ", "RUS", "UZB", "XXA"))),
    )


@st.composite
def release_notices(draw):
    actual = draw(st.none() | dates)
    return draw(st.sampled_from(ReleaseEvent)), ReleaseNotice(
        iin=draw(iins),
        facility=draw(organisations),
        release_type=draw(st.sampled_from(ReleaseType)),
        planned_date=draw(dates),
        actual_date=actual,
        destination=draw(addresses),
        housing=draw(housings),
        identity_documents=draw(documents),
        education=draw(st.none() | st.sampled_from(Education)),
        specialty=draw(st.none() | text),
        probation_office=draw(st.none() | organisations),
    )


@st.composite
def custody_episodes(draw):
    admitted = draw(dates)
    released = draw(st.none() | st.integers(0, 5000).map(lambda days: admitted + dt.timedelta(days=days)))
    return CustodyEpisode(
        facility=draw(organisations),
        basis=draw(st.sampled_from(CustodyBasis)),
        admission_date=admitted,
        release_date=released,
        release_type=None if released is None else draw(st.none() | st.sampled_from(ReleaseType)),
    )


articles = st.builds(
    CriminalCodeArticle,
    article=st.from_regex(r"\A[1-9][0-9]{0,2}(-[1-9])?\Z"),
    part=st.none() | st.integers(1, 9),
    paragraph=st.none() | st.integers(1, 9),
)


@st.composite
def sentences(draw):
    kind = draw(st.sampled_from(SentenceKind))
    term = None if kind is SentenceKind.LIFE_IMPRISONMENT else draw(st.none() | st.integers(1, 300))
    return Sentence(kind=kind, term_months=term, suspended=draw(st.booleans()))


convictions = st.builds(
    Conviction,
    articles=st.lists(articles, min_size=1, max_size=3).map(tuple),
    court=text,
    judgment_date=dates,
    sentence=sentences(),
    expunged=st.booleans(),
)
pretrial_cases = st.builds(
    PretrialCase,
    erdr_number=digits(15),
    registration_date=st.none() | dates,
    articles=st.lists(articles, max_size=3).map(tuple),
)


@st.composite
def registrations(draw):
    programme = draw(st.sampled_from(Programme))
    return DispensaryRegistration(
        programme=programme,
        icd10=draw(st.from_regex(r"\A[A-Z][0-9]{2}(\.[0-9]{1,2})?\Z")),
        since=draw(dates),
        regimen=draw(st.none() | text),
        last_dose=draw(st.none() | dates),
        days_supplied=draw(st.none() | st.integers(0, 90)),
        drug_susceptibility=draw(st.none() | st.sampled_from(DrugSusceptibility)) if programme is Programme.TB else None,
    )


risk_needs = st.builds(
    RiskNeeds,
    instrument=text,
    assessment_date=dates,
    score=st.integers(0, 60),
    band=st.sampled_from(RiskBand),
    **{
        field: st.sampled_from(NeedLevel)
        for field in (
            "criminal_history", "education_employment", "family_marital", "leisure_recreation",
            "companions", "alcohol_drug", "procriminal_attitude", "antisocial_pattern",
        )
    },
)


@st.composite
def pretrial_reports(draw):
    """A report on one subject, each section present or unavailable at random."""
    subject = draw(persons())
    available = {section: draw(st.booleans()) for section in ReportSection}
    content = {
        ReportSection.IDENTITY: lambda: subject,
        ReportSection.CRIMINAL_HISTORY: lambda: tuple(
            draw(st.lists(convictions.map(lambda c: c.model_copy(update={"expunged": False})), max_size=3))
        ),
        ReportSection.CUSTODY_HISTORY: lambda: tuple(draw(st.lists(custody_episodes(), max_size=3))),
        ReportSection.SOCIAL_SITUATION: lambda: SocialStatus(
            iin=subject.iin,
            marital_status=draw(st.none() | st.sampled_from(MaritalStatus)),
            dependants=draw(st.none() | st.integers(0, 9)),
            housing=draw(st.none() | housings),
            identity_documents=draw(documents),
            education=draw(st.none() | st.sampled_from(Education)),
            specialty=draw(st.none() | text),
            employment=draw(st.none() | st.sampled_from(EmploymentStatus)),
            benefits=tuple(draw(st.lists(text, max_size=2))),
        ),
        # What a court gets: flags, or with a legal basis the registrations themselves.
        ReportSection.HEALTH_SUMMARY: lambda: (
            HealthFlags(
                iin=subject.iin,
                continuous_treatment=draw(st.booleans()),
                disability=draw(st.none() | st.builds(Disability, group=st.sampled_from((1, 2, 3)),
                                                      valid_until=st.none() | dates)),
            ) if draw(st.booleans()) else HealthSummary(
                iin=subject.iin,
                registrations=tuple(draw(st.lists(registrations(), max_size=3))),
                disability=draw(st.none() | st.builds(Disability, group=st.sampled_from((1, 2, 3)),
                                                      valid_until=st.none() | dates)),
            )
        ),
        ReportSection.RISK_NEEDS: lambda: draw(risk_needs),
        ReportSection.OFFICER_CONCLUSION: lambda: draw(narrative),
    }
    sections = ReportSections(**{section.value: content[section]() for section in ReportSection if available[section]})
    provenance = {
        section: SectionProvenance(
            source=draw(text),
            fetched_at=draw(moments),
            status=SourceStatus.OK if available[section] else SourceStatus.UNAVAILABLE,
            reason=None if available[section] else draw(text),
        )
        for section in ReportSection
    }
    return PreTrialReport(
        report_id=draw(text),
        version=draw(st.integers(1, 50)),
        case=draw(pretrial_cases),
        subject=subject,
        requesting_body=draw(organisations),
        court=draw(organisations),
        due_date=draw(dates),
        sections=sections,
        provenance=provenance,
    )
