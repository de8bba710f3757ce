"""What every canonical record shares: immutability, strictness, no invisible characters."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["EARLIEST_DATE", "LATEST_DATE", "CanonicalModel", "ExchangeDate", "Narrative", "Organisation", "Text"]

EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)
ExchangeDate = Annotated[dt.date, Field(ge=EARLIEST_DATE, le=LATEST_DATE, json_schema_extra={
    # JSON Schema has no bounds for dates: the years are stated by the pattern, the bounds also
    # as formatMinimum/formatMaximum (the vocabulary's annotation).
    "pattern": "^(19[0-9]{2}|20[0-9]{2}|2100)-", "formatMinimum": EARLIEST_DATE.isoformat(),
    "formatMaximum": LATEST_DATE.isoformat(),
})]
"""A date an exchange acts on (a release, a court's deadline): within 1900-01-01..2100-12-31.
Without a clock the model cannot say "near now", but it can refuse what no process means —
9999-12-31 would be accepted and then overflow every deadline computed from it."""


class CanonicalModel(BaseModel):
    """Base of the canonical model.

    Frozen, because a record is a statement an agency made at a point in time; a change
    is a new record (or a new report version), never an edit in place. Unknown fields are
    refused so a codec that maps a field wrongly fails loudly instead of dropping data.
    Input values are left out of validation errors because those errors reach logs, and
    IINs and names must never appear there.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


# Control, format (zero-width, bidirectional overrides), surrogate, private-use and
# line/paragraph separator characters: invisible, they make two equal-looking texts differ
# and can reorder what a reader sees.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def _refuse_invisible(text: str, allowed: frozenset[str]) -> str:
    if text.isprintable():
        # Printable holds no character of the categories above (they are all "Other" or
        # "Separator", which isprintable refuses): the common case, checked in C.
        return text
    for position, char in enumerate(text, start=1):
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES and char not in allowed:
            raise ValueError(
                f"character {position} is the invisible character U+{ord(char):04X}; remove it"
            )
    return text


def _refuse_invisible_characters(text: str) -> str:
    return _refuse_invisible(text, allowed=frozenset())


def _refuse_invisible_characters_except_layout(text: str) -> str:
    return _refuse_invisible(text, allowed=frozenset("\r\n\t"))


# The formats say what a pattern cannot: text that is not blank once trimmed and holds no
# invisible character (Unicode categories Cc, Cf, Cs, Co, Zl, Zp; a narrative may hold line
# breaks and tabs).
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_refuse_invisible_characters),
    Field(json_schema_extra={"format": "visible-text"}),
]
"""A single line of text: a name of an organisation, a regimen, a reason."""

Narrative = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000),
    AfterValidator(_refuse_invisible_characters_except_layout),
    Field(json_schema_extra={"format": "visible-narrative"}),
]
"""Free text written by a person, such as the probation officer's conclusion."""


class Organisation(CanonicalModel):
    """A court, agency body, facility or clinic, as the exchange knows it."""

    code: Text
    """Its identifier in the sending system or the gateway's member register."""
    name: Text
