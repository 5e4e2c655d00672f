from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sublessor_billing.phone import mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("013800138000", "13800138000"),
        ("13800138000", "13800138000"),
        ("+86 21 1234 5678", "02112345678"),
        ("021-1234 5678", "02112345678"),
        ("+86 10 8888 8888", "01088888888"),
        ("86 021 1234 5678", "02112345678"),
        ("4008123456", "4008123456"),
        ("86123456789", "86123456789"),  # 86 + only 9 digits: kept as is
        ("", ""),
        ("anonymous", ""),
        ("１３８００１３８０００", "13800138000"),  # full-width digits from a CRM form
        ("+８６ 138-0013-8000", "13800138000"),
        ("١٣٨٠٠١٣٨٠٠٠", ""),  # other scripts' digits are not phone digits
        # Other countries: 00 is the international prefix, as it is for 0086.
        ("+852 9123 4567", "85291234567"),
        ("00852 9123 4567", "85291234567"),
        ("+44 20 7946 0958", "442079460958"),
        ("0044 20 7946 0958", "442079460958"),
        ("001 212 555 0123", "12125550123"),
        ("86 00852 9123 4567", "85291234567"),
        ("000852", "000852"),  # no country code starts with 0: kept as is
        ("00", "00"),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@given(st.text(max_size=40))
def test_normalize_is_idempotent_and_digits_only(raw: str) -> None:
    once = normalize_phone(raw)
    assert once == normalize_phone(once)
    assert once == "" or once.isascii() and once.isdigit()


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_every_written_form_of_a_mobile_is_the_same_caller(mobile: str) -> None:
    forms = [
        mobile,
        "0" + mobile,
        "+86" + mobile,
        "0086" + mobile,
        f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
        f"86 {mobile[:3]} {mobile[3:7]} {mobile[7:]}",
    ]
    assert {normalize_phone(f) for f in forms} == {mobile}


@given(
    st.from_regex(r"[1-9][0-9]{0,2}", fullmatch=True),
    st.from_regex(r"[1-9][0-9]{6,11}", fullmatch=True),
)
def test_plus_and_00_are_the_same_international_prefix(country: str, number: str) -> None:
    assert normalize_phone(f"00{country} {number}") == normalize_phone(f"+{country} {number}")


def test_mask_keeps_last_four_digits_only() -> None:
    assert mask_phone("+86 138-0013-8000") == "*********8000"
    assert mask_phone(None) == "<none>"
    assert "1380013" not in mask_phone("13800138000")
