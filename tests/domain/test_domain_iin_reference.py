"""validate_iin agrees with an independent implementation, kz-iin-validator.

What the comparison covers, and why. On strings of 12 ASCII digits the reference checks
the same rules — century digit 1-6, a real Gregorian birth date, both check-digit
weightings, numbers whose weightings both give 10 — and the two must agree on the verdict,
on the reason, and for valid numbers on birth date and sex. Its reasons are coarser: it
reports a bad century digit and a non-existent date with the same exception,
IINParseError, so both of ours map to that.

The comparison is restricted to ASCII digits because outside them the reference departs
from the rules: it tests characters with ``str.isdigit``, so it accepts other Unicode
decimal digits (fullwidth "８", Arabic-Indic "٨") and reads them with ``int``, and for
digit-like characters ``int`` cannot read (superscript "²") it fails with an unrelated
ValueError. An IIN is exactly 12 ASCII digits, so we refuse all of these; see the last
test. Length is not compared either: the random and valid-looking samples are all 12
digits long, and our own length rule is tested by hand.
"""

import datetime as dt
import random
from collections import Counter

import pytest
from kz_iin_validator import validate_iin as reference_validate_iin
from kz_iin_validator.exceptions import IINParseError, IncorrectIINChecksum, NonActiveIIN

from gateway.domain import IINDefect, InvalidIIN, Sex, validate_iin

SAMPLE_SIZE = 100_000

REFERENCE_EXCEPTION = {
    IINDefect.CENTURY: IINParseError,
    IINDefect.BIRTH_DATE: IINParseError,
    IINDefect.UNISSUABLE: NonActiveIIN,
    IINDefect.CHECK_DIGIT: IncorrectIINChecksum,
}
REFERENCE_SEX = {"male": Sex.MALE, "female": Sex.FEMALE}
FIRST_DIGIT_OF_CENTURY = {1800: 1, 1900: 3, 2000: 5}


def our_verdict(text: str) -> tuple:
    """The verdict in the reference's terms, and our own reason (None when valid)."""
    try:
        iin = validate_iin(text)
    except InvalidIIN as refused:
        return ("refused", REFERENCE_EXCEPTION[refused.defect]), refused.defect
    return ("valid", iin.birth_date, iin.sex), None


def reference_verdict(text: str) -> tuple:
    try:
        iin = reference_validate_iin(text)
    except (IINParseError, NonActiveIIN, IncorrectIINChecksum) as refused:
        return ("refused", type(refused))
    return ("valid", iin.born_date.datetime.date(), REFERENCE_SEX[iin.gender.name])


def disagreements(texts) -> tuple[list[str], Counter]:
    """The strings the two implementations judge differently, and how often each reason occurred."""
    differing, reasons = [], Counter()
    for text in texts:
        verdict, reason = our_verdict(text)
        if verdict != reference_verdict(text):
            differing.append(text)
        reasons[reason] += 1
    return differing, reasons


def random_digit_strings(rng: random.Random):
    for _ in range(SAMPLE_SIZE):
        yield f"{rng.randrange(10**12):012d}"


def valid_looking_strings(rng: random.Random):
    """Real birth dates, their century digit, a random serial; half with the right check digit.

    The right digit is recomputed here from the decree's weights so that neither
    implementation under comparison supplies it.
    """
    first, second = range(1, 12), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
    start, end = dt.date(1800, 1, 1).toordinal(), dt.date(2099, 12, 31).toordinal()
    for _ in range(SAMPLE_SIZE):
        birth_date = dt.date.fromordinal(rng.randint(start, end))
        century_digit = FIRST_DIGIT_OF_CENTURY[birth_date.year // 100 * 100] + rng.randrange(2)
        serial = rng.randrange(10_000)
        prefix = f"{birth_date.year % 100:02d}{birth_date:%m%d}{century_digit}{serial:04d}"
        digits = [int(d) for d in prefix]
        check = sum(w * d for w, d in zip(first, digits, strict=True)) % 11
        if check == 10:
            check = sum(w * d for w, d in zip(second, digits, strict=True)) % 11
        last = rng.randrange(10) if check == 10 or rng.random() < 0.5 else check
        yield f"{prefix}{last}"


def test_agrees_with_the_reference_on_random_12_digit_strings():
    differing, reasons = disagreements(random_digit_strings(random.Random(20170101)))

    assert differing == []
    # Random strings mostly fail early; the sample must still reach every rule that
    # applies to 12 ASCII digits, and contain valid numbers.
    assert set(reasons) == set(REFERENCE_EXCEPTION) | {None}


def test_agrees_with_the_reference_on_valid_looking_strings():
    differing, reasons = disagreements(valid_looking_strings(random.Random(20190331)))

    assert differing == []
    # Half the sample carries the right check digit (a tenth of the rest does by chance).
    assert reasons[None] > SAMPLE_SIZE * 0.5
    assert reasons[IINDefect.UNISSUABLE] > 0 and reasons[IINDefect.CHECK_DIGIT] > 0


def test_non_ascii_digits_are_refused_though_the_reference_accepts_them():
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in "850115400911")

    assert reference_verdict(fullwidth)[0] == "valid"
    with pytest.raises(InvalidIIN) as refused:
        validate_iin(fullwidth)
    assert refused.value.defect is IINDefect.CHARACTER
