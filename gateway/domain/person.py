"""The person every exchange is about, and where they live."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, StringConstraints, model_validator

from gateway.domain.canonical import CanonicalModel, Text
from gateway.domain.iin import IIN, Sex

__all__ = ["Address", "Person"]

_KAZAKH_LETTERS = "ӘәҒғҚқҢңӨөҰұҮүҺһІі"
_RUSSIAN_LETTERS = "А-Яа-яЁё"
_LATIN_LETTERS = "A-Za-z"
_LETTER = f"[{_LATIN_LETTERS}{_RUSSIAN_LETTERS}{_KAZAKH_LETTERS}]"
# ASCII apostrophe, right single quotation mark and modifier letter apostrophe: all three
# occur in Latin-script Kazakh spellings and in transliterated foreign names.
_APOSTROPHES = "'’ʼ"
_ALLOWED_CHARACTER = re.compile(f"{_LETTER}|[-{_APOSTROPHES} ]")
# A name starts with a letter; a hyphen or space joins two letters ("Абу-Бакир",
# "Мухаммед Али"); apostrophes may follow any letter ("O'Brien", "Д'Артаньян").
_NAME = re.compile(f"{_LETTER}(?:{_LETTER}|[{_APOSTROPHES}]|[- ]{_LETTER})*")

_NAME_RULE = (
    "names may contain Kazakh and Russian Cyrillic letters (including ә ғ қ ң ө ұ ү һ і), "
    "Latin letters, hyphens, apostrophes and single spaces"
)


def _check_name(name: str) -> str:
    # Composed form, so "й" typed as и + combining breve compares equal to the single letter.
    name = unicodedata.normalize("NFC", name)
    for position, char in enumerate(name, start=1):
        if not _ALLOWED_CHARACTER.fullmatch(char):
            shown = f"{char!r} (U+{ord(char):04X})" if char.isprintable() else f"U+{ord(char):04X}"
            raise ValueError(f"character {position} is {shown}; {_NAME_RULE}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            "a name must start with a letter, and a hyphen or space must stand between two letters"
        )
    return name


PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_check_name),
]

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 3166-1 alpha-3, as in passports (ICAO 9303 adds XXA for stateless persons)."""

KatoCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]
"""КАТО, the classifier of administrative-territorial objects: 9 digits, region first."""


class Person(CanonicalModel):
    """A person as identified by the interior ministry.

    Birth date and sex are carried explicitly because agency systems send them, but they
    must agree with the IIN: a disagreement means one of the records belongs to someone
    else, and joining them would be worse than refusing.
    """

    iin: IIN
    surname: PersonName
    given_name: PersonName
    patronymic: PersonName | None = None
    birth_date: dt.date
    sex: Sex
    citizenship: CountryCode = "KAZ"

    @model_validator(mode="after")
    def _agrees_with_iin(self) -> Self:
        # The messages name the disagreement, not the values: validation errors reach logs.
        if self.birth_date != self.iin.birth_date:
            raise ValueError("birth_date does not agree with the birth date the IIN encodes")
        if self.sex != self.iin.sex:
            raise ValueError("sex does not agree with the sex the IIN encodes (digit 7)")
        return self


class Address(CanonicalModel):
    """An address, structured as far as the sending system structures it.

    Systems differ: some send a KATO code and parts, some only a line of text, so every
    part is optional, but an address must at least say where — by KATO code, locality or
    raw text.
    """

    # "At least say where", for JSON Schema readers too: one of these three is there and not null.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in ("kato", "locality", "raw")
    ]})

    kato: KatoCode | None = None
    region: Text | None = None
    locality: Text | None = None
    street: Text | None = None
    house: Text | None = None
    flat: Text | None = None
    raw: Text | None = None
    """The address as the sending system wrote it, kept for what the parts cannot express."""

    @model_validator(mode="after")
    def _says_where(self) -> Self:
        if self.kato is None and self.locality is None and self.raw is None:
            raise ValueError("an address needs at least a KATO code, a locality or the raw text")
        return self
