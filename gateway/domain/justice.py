"""Criminal-justice records: pre-trial cases, convictions and time in custody."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from gateway.domain.canonical import CanonicalModel, Organisation, Text

__all__ = [
    "Conviction",
    "CriminalCodeArticle",
    "CustodyBasis",
    "CustodyEpisode",
    "PretrialCase",
    "ReleaseType",
    "Sentence",
    "SentenceKind",
]

ErdrNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{15}$")]
"""Number of the case in ЕРДР, the unified register of pre-trial investigations: 15 digits."""


class CriminalCodeArticle(CanonicalModel):
    """A provision of the Criminal Code of the Republic of Kazakhstan (2014)."""

    article: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,3}(-[0-9]{1,2})?$")]
    """Article number; articles inserted by later amendments carry a suffix, as in "188-1"."""
    part: int | None = Field(default=None, ge=1)
    paragraph: int | None = Field(default=None, ge=1)


class SentenceKind(StrEnum):
    """The punishments of Criminal Code art. 40 (the death penalty was abolished in 2021)."""

    FINE = "FINE"
    CORRECTIONAL_LABOUR = "CORRECTIONAL_LABOUR"
    COMMUNITY_SERVICE = "COMMUNITY_SERVICE"
    ARREST = "ARREST"
    EXPULSION = "EXPULSION"
    RESTRICTION_OF_FREEDOM = "RESTRICTION_OF_FREEDOM"
    IMPRISONMENT = "IMPRISONMENT"
    LIFE_IMPRISONMENT = "LIFE_IMPRISONMENT"


class Sentence(CanonicalModel):
    kind: SentenceKind
    term_months: int | None = Field(default=None, ge=1)
    suspended: bool = False
    """Conditional sentence (условное осуждение): served on the probation register."""

    @model_validator(mode="after")
    def _life_has_no_term(self) -> Self:
        if self.kind is SentenceKind.LIFE_IMPRISONMENT and self.term_months is not None:
            raise ValueError("life imprisonment has no term; leave term_months empty")
        return self


class Conviction(CanonicalModel):
    """A conviction as the interior ministry's special records hold it.

    An expunged conviction (погашенная или снятая судимость, Criminal Code art. 79) has no
    legal consequences any more. The gateway keeps the flag so that it can tell such
    convictions apart, but they never leave the gateway: no outbound document may carry
    one (PreTrialReport refuses them), and the disclosure policy withholds them from every
    recipient.
    """

    articles: tuple[CriminalCodeArticle, ...] = Field(min_length=1)
    """Every article the judgment convicted under; one judgment may cover several offences."""
    court: Text
    judgment_date: dt.date
    sentence: Sentence
    expunged: bool


class ReleaseType(StrEnum):
    END_OF_TERM = "END_OF_TERM"
    PAROLE = "PAROLE"
    """Условно-досрочное освобождение (УДО): the rest of the term is served under probation."""
    AMNESTY = "AMNESTY"
    ILLNESS = "ILLNESS"
    """Освобождение от наказания в связи с болезнью: release because of a serious illness."""


class CustodyBasis(StrEnum):
    PRE_TRIAL_DETENTION = "PRE_TRIAL_DETENTION"
    SENTENCE = "SENTENCE"


class CustodyEpisode(CanonicalModel):
    """One continuous stay in a penal-system facility or remand centre."""

    facility: Organisation
    basis: CustodyBasis
    admission_date: dt.date
    release_date: dt.date | None = None
    """Empty while the person is still held."""
    release_type: ReleaseType | None = None

    @model_validator(mode="after")
    def _released_after_admission(self) -> Self:
        if self.release_date is not None and self.release_date < self.admission_date:
            raise ValueError("release_date is before admission_date")
        if self.release_type is not None and self.release_date is None:
            raise ValueError("release_type is given but release_date is not")
        return self


class PretrialCase(CanonicalModel):
    """The criminal case a pre-trial report is prepared for."""

    erdr_number: ErdrNumber
    registration_date: dt.date | None = None
    articles: tuple[CriminalCodeArticle, ...] = ()
    """The articles the case is investigated under, as qualified so far."""
