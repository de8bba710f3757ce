"""The canonical model: what agencies exchange, independent of how any of them encodes it.

Every adapter translates its system's native messages to and from these types, so the
workflows see one vocabulary. The models are plain data — no I/O, no XML, HTTP or SQL —
immutable, and strict: an unknown field or an invalid IIN is refused, with a message the
sender can act on.
"""

from gateway.domain.canonical import ExchangeDate, Organisation
from gateway.domain.health import (
    Attachment,
    AttachmentState,
    ContinuityHold,
    Disability,
    DispensaryRegistration,
    DrugSusceptibility,
    HealthFlags,
    HealthSummary,
    Programme,
)
from gateway.domain.iin import IIN, IINDefect, InvalidIIN, Sex, make_iin, validate_iin
from gateway.domain.justice import (
    Conviction,
    CriminalCodeArticle,
    CustodyBasis,
    CustodyEpisode,
    PretrialCase,
    ReleaseType,
    Sentence,
    SentenceKind,
)
from gateway.domain.person import Address, Person
from gateway.domain.release import (
    ContinuityOfCareNotice,
    EmploymentNotice,
    ProbationNotice,
    ReleaseEvent,
    ReleaseNotice,
)
from gateway.domain.reports import (
    NeedLevel,
    PreTrialReport,
    ReportSection,
    ReportSections,
    RiskBand,
    RiskNeeds,
    SectionProvenance,
    SourceStatus,
)
from gateway.domain.social import (
    AssistanceCategory,
    AssistanceReferral,
    Education,
    EmploymentStatus,
    Housing,
    HousingKind,
    IdentityDocument,
    MaritalStatus,
    ReferralOutcome,
    ReferralStatus,
    SocialStatus,
)

__all__ = [
    "ExchangeDate",
    "IIN",
    "Address",
    "AssistanceCategory",
    "AssistanceReferral",
    "Attachment",
    "AttachmentState",
    "ContinuityHold",
    "ContinuityOfCareNotice",
    "Conviction",
    "CriminalCodeArticle",
    "CustodyBasis",
    "CustodyEpisode",
    "Disability",
    "DispensaryRegistration",
    "DrugSusceptibility",
    "Education",
    "EmploymentNotice",
    "EmploymentStatus",
    "HealthFlags",
    "HealthSummary",
    "Housing",
    "HousingKind",
    "IINDefect",
    "IdentityDocument",
    "InvalidIIN",
    "MaritalStatus",
    "NeedLevel",
    "Organisation",
    "Person",
    "PreTrialReport",
    "PretrialCase",
    "ProbationNotice",
    "Programme",
    "ReferralOutcome",
    "ReferralStatus",
    "ReleaseEvent",
    "ReleaseNotice",
    "ReleaseType",
    "ReportSection",
    "ReportSections",
    "RiskBand",
    "RiskNeeds",
    "SectionProvenance",
    "Sentence",
    "SentenceKind",
    "Sex",
    "SocialStatus",
    "SourceStatus",
    "make_iin",
    "validate_iin",
]
