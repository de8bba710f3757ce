"""The IIN rules, one at a time, and the properties that tie validation and generation together."""

import datetime as dt
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import IIN, IINDefect, InvalidIIN, Sex, make_iin, validate_iin

FIRST_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def check_digit_by_the_rule(first_eleven: str) -> int | None:
    """The check digit as the decree defines it, written out independently of the module."""
    for weights in (FIRST_WEIGHTS, SECOND_WEIGHTS):
        remainder = sum(int(d) * w for d, w in zip(first_eleven, weights, strict=True)) % 11
        if remainder < 10:
            return remainder
    return None


def defect_of(text: str) -> IINDefect:
    with pytest.raises(InvalidIIN) as raised:
        validate_iin(text)
    return raised.value.defect


def message_of(text: str) -> str:
    with pytest.raises(InvalidIIN) as raised:
        validate_iin(text)
    return str(raised.value)


# --- a valid number and what it says ------------------------------------------------------


def test_a_valid_iin_gives_its_birth_date_sex_and_century():
    iin = validate_iin("850115400911")

    assert (iin.birth_date, iin.sex, iin.century) == (dt.date(1985, 1, 15), Sex.FEMALE, 1900)


def test_a_valid_iin_is_the_string_it_was_given():
    iin = validate_iin("850115400911")

    assert iin == "850115400911" and isinstance(iin, str)


@pytest.mark.parametrize(
    ("century_digit", "century", "sex"),
    [
        (1, 1800, Sex.MALE),
        (2, 1800, Sex.FEMALE),
        (3, 1900, Sex.MALE),
        (4, 1900, Sex.FEMALE),
        (5, 2000, Sex.MALE),
        (6, 2000, Sex.FEMALE),
    ],
)
def test_the_seventh_digit_gives_century_and_sex(century_digit, century, sex):
    prefix = f"010203{century_digit}0000"
    serial = 0
    while check_digit_by_the_rule(prefix) is None:
        serial += 1
        prefix = f"010203{century_digit}{serial:04d}"

    iin = validate_iin(f"{prefix}{check_digit_by_the_rule(prefix)}")

    assert (iin.century, iin.sex, iin.birth_date) == (century, sex, dt.date(century + 1, 2, 3))


def test_constructing_an_iin_validates_it():
    with pytest.raises(InvalidIIN):
        IIN("850115400912")


def test_an_iin_survives_pickling_as_an_iin():
    iin = validate_iin("850115400911")

    assert type(pickle.loads(pickle.dumps(iin))) is IIN


# --- each reason for refusal --------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "85011540091", "8501154009111"])
def test_wrong_length_is_refused_with_the_count(text):
    assert defect_of(text) is IINDefect.LENGTH
    assert f"but has {len(text)}" in message_of(text)


def test_a_letter_is_refused_with_its_position():
    # Letter O for zero: the mistake people make when copying from paper.
    assert defect_of("85O115400911") is IINDefect.CHARACTER
    assert "character 3 is not one of them" in message_of("85O115400911")


def test_a_control_character_is_refused_with_its_position():
    assert "character 13 is not one of them" in message_of("850115400911\n")


def test_non_ascii_digits_are_refused():
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in "850115400911")

    assert defect_of(fullwidth) is IINDefect.CHARACTER


@pytest.mark.parametrize("century_digit", [0, 7, 8, 9])
def test_a_century_digit_outside_1_to_6_is_refused(century_digit):
    text = f"850115{century_digit}00911"

    assert defect_of(text) is IINDefect.CENTURY
    assert "must be 1-6, but is not" in message_of(text)


@pytest.mark.parametrize("birth_digits", ["851315", "850001", "850100", "850431", "850230"])
def test_a_birth_date_that_does_not_exist_is_refused(birth_digits):
    assert defect_of(f"{birth_digits}400911") is IINDefect.BIRTH_DATE


def test_a_refusal_never_repeats_the_digits_sent():
    for text in ("850230400911", "850115400912", "850115900911", "85O115400911", "850115400910"):
        message = message_of(text)
        # Positions and counts (digit 12, 1-6) only: no run of the number's digits, no date.
        assert re.search(r"[0-9]{3,}|-[0-9]{2}-", message) is None, message


def test_a_29_february_outside_a_leap_year_is_named_as_such():
    assert "not a leap year" in message_of("850229400911")


def test_a_wrong_check_digit_is_refused_without_the_right_one():
    assert defect_of("850115400912") is IINDefect.CHECK_DIGIT
    assert "check digit (digit 12) does not match the first 11 digits" in message_of("850115400912")


def test_second_weights_give_the_check_digit_when_the_first_give_ten():
    # 8·1+5·2+0·3+1·4+1·5+5·6+4·7+0·8+0·9+9·10+1·11 = 186 ≡ 10 (mod 11), so the second
    # weighting applies: 8·3+5·4+0·5+1·6+1·7+5·8+4·9+0·10+0·11+9·1+1·2 = 144 ≡ 1.
    assert validate_iin("850115400911").birth_date == dt.date(1985, 1, 15)
    assert defect_of("850115400910") is IINDefect.CHECK_DIGIT


@pytest.mark.parametrize("check_digit", range(10))
def test_a_number_whose_both_weightings_give_ten_is_unissuable(check_digit):
    # 85011540090: first weighting 175 ≡ 10, second 142 ≡ 10 (mod 11).
    text = f"85011540090{check_digit}"

    assert defect_of(text) is IINDefect.UNISSUABLE
    assert "never issued" in message_of(text)


def test_each_reason_has_its_own_message():
    one_per_reason = [
        "8501154009",
        "85011540091x",
        "850115000911",
        "850230400911",
        "850115400912",
        "850115400900",
    ]

    messages = {message_of(text) for text in one_per_reason}

    assert len(messages) == 6


def test_a_number_that_is_not_a_string_is_a_programming_error():
    with pytest.raises(TypeError):
        validate_iin(850115400911)  # type: ignore[arg-type]


# --- leap years: 1800 and 1900 are not leap years, 2000 is ----------------------------------


@pytest.mark.parametrize("century_digit", [5, 6])
def test_29_february_2000_exists(century_digit):
    prefix = f"000229{century_digit}0000"

    iin = validate_iin(f"{prefix}{check_digit_by_the_rule(prefix)}")

    assert iin.birth_date == dt.date(2000, 2, 29)


@pytest.mark.parametrize(("century_digit", "year"), [(1, 1800), (2, 1800), (3, 1900), (4, 1900)])
def test_29_february_of_1800_and_1900_does_not_exist(century_digit, year):
    text = f"000229{century_digit}00000"

    assert defect_of(text) is IINDefect.BIRTH_DATE
    assert "not a leap year" in message_of(text)


def test_29_february_1804_exists():
    # Also a second-weighting number: the first weighting gives 10, the second 2.
    assert validate_iin("040229100002").birth_date == dt.date(1804, 2, 29)


def test_29_february_1996_exists():
    prefix = "96022930000"

    iin = validate_iin(f"{prefix}{check_digit_by_the_rule(prefix)}")

    assert iin.birth_date == dt.date(1996, 2, 29)


# --- generating numbers -------------------------------------------------------------------


def test_make_iin_returns_none_for_an_unissuable_serial():
    assert make_iin(dt.date(1985, 1, 15), Sex.FEMALE, 90) is None


def test_make_iin_uses_the_second_weighting_when_needed():
    assert make_iin(dt.date(1985, 1, 15), Sex.FEMALE, 91) == "850115400911"


@pytest.mark.parametrize("birth_date", [dt.date(1799, 12, 31), dt.date(2100, 1, 1)])
def test_make_iin_refuses_a_birth_year_the_iin_cannot_encode(birth_date):
    with pytest.raises(ValueError, match="1800-2099"):
        make_iin(birth_date, Sex.MALE, 1)


@pytest.mark.parametrize("serial", [-1, 10_000])
def test_make_iin_refuses_a_serial_outside_four_digits(serial):
    with pytest.raises(ValueError, match="0-9999"):
        make_iin(dt.date(1985, 1, 15), Sex.MALE, serial)


# --- properties ---------------------------------------------------------------------------

birth_dates = st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2099, 12, 31))
serials = st.integers(min_value=0, max_value=9999)
sexes = st.sampled_from(Sex)


def prefix_for(birth_date: dt.date, sex: Sex, serial: int) -> str:
    """The first 11 digits: YYMMDD, the century-and-sex digit, the serial."""
    century_digit = {1800: 1, 1900: 3, 2000: 5}[birth_date.year // 100 * 100]
    century_digit += sex is Sex.FEMALE
    return f"{birth_date.year % 100:02d}{birth_date:%m%d}{century_digit}{serial:04d}"


valid_looking_prefixes = st.builds(prefix_for, birth_dates, sexes, serials)


def validates(text: str) -> bool:
    try:
        validate_iin(text)
    except InvalidIIN:
        return False
    return True


@settings(max_examples=300)
@given(birth_date=birth_dates, sex=sexes, serial=serials)
def test_make_iin_round_trips_birth_date_and_sex(birth_date, sex, serial):
    iin = make_iin(birth_date, sex, serial)

    if iin is not None:
        parsed = validate_iin(str(iin))
        assert (parsed.birth_date, parsed.sex) == (birth_date, sex)


@settings(max_examples=300)
@given(birth_date=birth_dates, sex=sexes, serial=serials)
def test_make_iin_returns_none_exactly_when_no_check_digit_completes_the_number(
    birth_date, sex, serial
):
    prefix = prefix_for(birth_date, sex, serial)
    completions = [f"{prefix}{digit}" for digit in range(10) if validates(f"{prefix}{digit}")]

    assert [make_iin(birth_date, sex, serial)] == (completions or [None])


@settings(max_examples=500)
@given(
    text=st.one_of(
        st.text(alphabet="0123456789", min_size=12, max_size=12),
        st.builds("{}{}".format, valid_looking_prefixes, st.integers(min_value=0, max_value=9)),
    )
)
def test_any_string_that_validates_has_the_check_digit_its_first_eleven_digits_give(text):
    if validates(text):
        assert int(text[11]) == check_digit_by_the_rule(text[:11])


@settings(max_examples=300)
@given(prefix=valid_looking_prefixes)
def test_a_valid_looking_prefix_is_completed_by_one_check_digit_unless_unissuable(prefix):
    completions = [digit for digit in range(10) if validates(f"{prefix}{digit}")]

    expected = check_digit_by_the_rule(prefix)
    assert completions == ([] if expected is None else [expected])
