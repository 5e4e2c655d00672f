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
        # Other countries: the contract's steps only, as written (docs/broker_phone_sync.md,
        # "Foreign numbers"). `+` and spaces go with step 1; only `0086` loses its `00`.
        ("+852 9123 4567", "85291234567"),
        ("852-9123-4567", "85291234567"),
        ("+44 20 7946 0958", "442079460958"),
        ("00852 9123 4567", "0085291234567"),  # not the same caller as +852 (open question)
        ("0044 20 7946 0958", "00442079460958"),
        ("001 212 555 0123", "0012125550123"),
        ("86 00852 9123 4567", "0085291234567"),  # step 3 drops 86; nothing else applies
        ("000852", "000852"),
        ("00", "00"),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@given(st.text(max_size=40))
def test_normalize_gives_ascii_digits_only(raw: str) -> None:
    once = normalize_phone(raw)
    assert once == "" or once.isascii() and once.isdigit()


@given(st.text(max_size=40))
def test_a_normalized_number_normalizes_to_itself_unless_it_starts_with_0086(raw: str) -> None:
    """The contract's steps run once: only a result starting with 0086 changes again."""
    once = normalize_phone(raw)
    assert once == normalize_phone(once) or once.startswith("0086")


def test_normalizing_twice_is_not_the_contract() -> None:
    """Step 2 comes before step 3 and each runs once: 86 then 0086 keeps the second 00."""
    once = normalize_phone("86 0086 138 0013 8000")
    assert (once, normalize_phone(once)) == ("008613800138000", "13800138000")


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


def test_mask_keeps_last_four_digits_only() -> None:
    assert mask_phone("+86 138-0013-8000") == "*********8000"
    assert mask_phone(None) == "<none>"
    assert "1380013" not in mask_phone("13800138000")
