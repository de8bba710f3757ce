"""ИИН — the individual identification number every resident of Kazakhstan carries.

The IIN is the key every agency system shares, so a wrong one silently joins one
person's record to another's. It is therefore checked at every entry point, and the
reason for a refusal is precise enough for the sender to correct the number: which rule
and which position, never the digits themselves — the message reaches faults, problems and
logs, and a refused number is often a real person's with one digit mistyped.

Structure (Government Decree No. 565 of 11 June 2003, "on the transition to the single
individual identification number"):

    digits 1-6   YYMMDD, the birth date within its century
    digit  7     century and sex: 1/2 = 1800s, 3/4 = 1900s, 5/6 = 2000s; odd male, even female
    digits 8-11  serial number
    digit  12    check digit
"""

from __future__ import annotations

import calendar
import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = ["IIN", "IINDefect", "InvalidIIN", "Sex", "make_iin", "validate_iin"]


class Sex(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"


class IINDefect(StrEnum):
    """Why a string is not an IIN; one value per rule, so callers can react without parsing text."""

    CHARACTER = "character"
    LENGTH = "length"
    CENTURY = "century"
    BIRTH_DATE = "birth_date"
    CHECK_DIGIT = "check_digit"
    UNISSUABLE = "unissuable"


class InvalidIIN(ValueError):
    """The text is not a valid IIN; the message says which rule failed and how to correct it."""

    def __init__(self, defect: IINDefect, message: str) -> None:
        super().__init__(message)
        self.defect = defect


_LENGTH = 12
_ASCII_DIGITS = frozenset("0123456789")

# The 7th digit: first year of the birth century, and sex (odd male, even female).
_CENTURY_BY_DIGIT = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
_DIGIT_BY_CENTURY_AND_SEX = {
    (century, Sex.MALE if digit % 2 else Sex.FEMALE): digit
    for digit, century in _CENTURY_BY_DIGIT.items()
}

_FIRST_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
# Used only when the first weighting gives 10, which is not a single digit.
_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_NO_CHECK_DIGIT = 10


def _check_digit(first_eleven: list[int]) -> int | None:
    """The check digit for the first 11 digits, or None when the number is never issued.

    The second weighting exists so that most numbers whose first checksum is 10 still get
    a single-digit check; the registry never issues a number for which both give 10.
    """
    for weights in (_FIRST_WEIGHTS, _SECOND_WEIGHTS):
        remainder = sum(w * d for w, d in zip(weights, first_eleven, strict=True)) % 11
        if remainder != _NO_CHECK_DIGIT:
            return remainder
    return None


def _check(text: str) -> None:
    """Raise InvalidIIN for the first rule the text breaks, in the order a person reads it."""
    if not isinstance(text, str):
        raise TypeError(f"an IIN is given as a string, not {type(text).__name__}")
    for position, char in enumerate(text, start=1):
        if char not in _ASCII_DIGITS:
            raise InvalidIIN(
                IINDefect.CHARACTER,
                f"IIN must contain only the digits 0-9, but character {position} is not one of them",
            )
    if len(text) != _LENGTH:
        raise InvalidIIN(
            IINDefect.LENGTH, f"IIN must have exactly {_LENGTH} digits, but has {len(text)}"
        )

    digits = [ord(char) - ord("0") for char in text]
    century = _CENTURY_BY_DIGIT.get(digits[6])
    if century is None:
        raise InvalidIIN(
            IINDefect.CENTURY,
            "IIN digit 7 gives the century of birth and the sex and must be 1-6, but is not",
        )

    year, month, day = century + int(text[0:2]), int(text[2:4]), int(text[4:6])
    try:
        dt.date(year, month, day)
    except ValueError:
        detail = (
            " (29 February of a year that is not a leap year)"
            if (month, day) == (2, 29) and not calendar.isleap(year)
            else ""
        )
        raise InvalidIIN(
            IINDefect.BIRTH_DATE,
            f"IIN digits 1-6 (YYMMDD) with the century of digit 7 give a birth date that does not exist{detail}",
        ) from None

    expected = _check_digit(digits[:11])
    if expected is None:
        raise InvalidIIN(
            IINDefect.UNISSUABLE,
            "IIN cannot exist: its first 11 digits give no check digit under either weighting, "
            "so such a number is never issued; one of the digits is probably mistyped",
        )
    if digits[11] != expected:
        raise InvalidIIN(
            IINDefect.CHECK_DIGIT,
            "IIN check digit (digit 12) does not match the first 11 digits; one of the digits is probably mistyped",
        )


class IIN(str):
    """A valid IIN: the 12-digit string itself, so it compares, hashes and prints as one.

    Constructing it validates (``IIN("...")`` raises InvalidIIN), so an IIN instance is
    always valid. In pydantic models it validates with the same messages, serialises as
    the plain string, and its JSON Schema is ``{"type": "string", "pattern": "^[0-9]{12}$", "format": "iin"}``.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> IIN:
        if type(text) is cls:
            return text
        _check(text)
        return super().__new__(cls, text)

    @property
    def century(self) -> int:
        """The first year of the birth century: 1800, 1900 or 2000."""
        return _CENTURY_BY_DIGIT[int(self[6])]

    @property
    def birth_date(self) -> dt.date:
        return dt.date(self.century + int(self[0:2]), int(self[2:4]), int(self[4:6]))

    @property
    def sex(self) -> Sex:
        return Sex.MALE if int(self[6]) % 2 else Sex.FEMALE

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # A plain str schema first: an integer would lose the leading zero of everyone born
        # in 2000-2009, so numbers are refused rather than converted.
        return core_schema.no_info_after_validator_function(
            _iin_from_model_input,
            core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(
                str, return_schema=core_schema.str_schema()
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # format "iin": the check digit and the birth-date digits, which a pattern cannot state.
        return {"type": "string", "pattern": f"^[0-9]{{{_LENGTH}}}$", "format": "iin"}


def _iin_from_model_input(text: str) -> IIN:
    try:
        return IIN(text)
    except InvalidIIN as error:
        # A dedicated error type lets the API map it to a problem document without
        # matching on message text; the message itself stays the one a person reads.
        raise PydanticCustomError(
            "invalid_iin", "{reason}", {"reason": str(error), "defect": error.defect.value}
        ) from None


def validate_iin(text: str) -> IIN:
    """Return ``text`` as an IIN, or raise InvalidIIN (a ValueError) saying what is wrong."""
    return IIN(text)


def make_iin(birth_date: dt.date, sex: Sex, serial: int) -> IIN | None:
    """Build the IIN for a birth date, sex and 4-digit serial; None if that number is never issued.

    Simulated agency systems use this to create consistent synthetic people. About one
    number in 120 has no check digit, so callers try the next serial on None.
    """
    century = birth_date.year - birth_date.year % 100
    century_digit = _DIGIT_BY_CENTURY_AND_SEX.get((century, Sex(sex)))
    if century_digit is None:
        raise ValueError(f"an IIN encodes birth years 1800-2099, not {birth_date.year}")
    if not 0 <= serial <= 9999:
        raise ValueError(f"an IIN serial has 4 digits (0-9999), not {serial}")
    first_eleven = (
        f"{birth_date.year % 100:02d}{birth_date.month:02d}{birth_date.day:02d}"
        f"{century_digit}{serial:04d}"
    )
    check = _check_digit([int(char) for char in first_eleven])
    return None if check is None else IIN(f"{first_eleven}{check}")
