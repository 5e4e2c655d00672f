"""Rules of the broker phone sync: time conversion, overlap, plausible mobiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sublessor_billing.broker_sync import (
    MalformedMobile,
    MalformedRow,
    full_resync_due,
    phone_for_broker,
    source_window,
    to_source_time,
)
from sublessor_billing.broker_sync.rules import (
    MAX_NAMED_MALFORMED,
    implausible_row,
    mask_number,
    phones_for_page,
)
from sublessor_billing.phone import normalize_phone

UTC = UTC


def test_utc_interval_becomes_shanghai_local_time() -> None:
    assert to_source_time(datetime(2026, 3, 1, 2, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 10, 0)
    # Across midnight and a year boundary.
    assert to_source_time(datetime(2025, 12, 31, 20, 0, tzinfo=UTC)) == datetime(2026, 1, 1, 4, 0)


def test_other_aware_zones_are_converted_too() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert to_source_time(datetime(2026, 3, 1, 4, 0, tzinfo=plus_two)) == datetime(
        2026, 3, 1, 10, 0
    )


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        to_source_time(datetime(2026, 3, 1, 2, 0))


def test_window_is_widened_by_the_overlap() -> None:
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    low, high = source_window(start, start + timedelta(minutes=5), 900)
    assert (low, high) == (datetime(2026, 3, 1, 9, 45), datetime(2026, 3, 1, 10, 5))


def test_window_refuses_short_overlap_and_reversed_interval() -> None:
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="minimum"):
        source_window(start, start + timedelta(minutes=5), 599)
    with pytest.raises(ValueError, match="before it starts"):
        source_window(start, start - timedelta(minutes=5), 900)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("013800138000", "13800138000"),
        ("021-1234 5678", "02112345678"),
        ("+86 10 8888 8888", "01088888888"),
        ("0755 8888 8888", "075588888888"),
        ("", None),
        ("   ", None),
        ("\u3000", None),  # a full-width blank is blank too
        (None, None),
    ],
)
def test_plausible_mobiles_and_empty_ones(raw: str | None, expected: str | None) -> None:
    assert phone_for_broker(7, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+852 9123 4567", "85291234567"),
        ("00852 9123 4567", "0085291234567"),  # the contract keeps a foreign 00
        ("+44 20 7946 0958", "442079460958"),
        ("+1 (212) 555-0123", "12125550123"),
        ("12345", "12345"),
        ("138001380001", "138001380001"),
        ("23800138000", "23800138000"),
        ("abc138", "138"),
        ("0123", "0123"),
        ("9" * 20, "9" * 20),  # the longest UserMobile (VARCHAR(20)) fits broker_phone.phone
        ("\u2152" * 20, "110" * 20),  # NFKC widens each into three digits: 60 fit too
    ],
)
def test_every_number_with_digits_is_synced_as_normalized(raw: str, expected: str) -> None:
    """Foreign and unusual numbers are numbers: a caller dialling from them is the broker."""
    assert phone_for_broker(7, raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("n/a", "no digits"),
        ("无", "no digits"),
        ("-", "no digits"),
        ("\u2152" * 22, "66 digits"),  # beyond what a VARCHAR(20) UserMobile can give
    ],
)
def test_malformed_mobiles_name_the_broker_and_mask_the_number(raw: str, why: str) -> None:
    with pytest.raises(MalformedMobile) as failure:
        phone_for_broker(4242, raw)
    assert "BrokerId 4242" in str(failure.value)
    assert why in str(failure.value)


def test_a_page_keeps_its_valid_rows_and_lists_every_malformed_one() -> None:
    when = datetime(2026, 3, 1, 10, 0)
    wanted, bad = phones_for_page(
        [
            (1, "n/a", when),
            (2, "13800138000", when),
            (3, "无", when),
            (4, "", when),
            (5, "12", when),
        ]
    )
    assert wanted == {2: ("13800138000", when), 4: (None, when), 5: ("12", when)}
    assert [row.broker_id for row in bad] == [1, 3]
    assert all(row.why for row in bad)


def test_a_failure_names_the_first_rows_and_counts_the_rest() -> None:
    rows = [MalformedRow(i, "*2345", "5 digits") for i in range(MAX_NAMED_MALFORMED)]
    failure = MalformedMobile(rows, total=MAX_NAMED_MALFORMED + 7)
    assert failure.total == MAX_NAMED_MALFORMED + 7
    assert f"BrokerId {MAX_NAMED_MALFORMED - 1} " in str(failure)
    assert "and 7 more" in str(failure)


@pytest.mark.parametrize(
    ("age_hours", "every_hours", "due"),
    [(None, 24, True), (23.99, 24, False), (24, 24, True), (500, 24, True), (None, 0, False)],
)
def test_periodic_full_resync_is_due_after_the_configured_hours(
    age_hours: float | None, every_hours: int, due: bool
) -> None:
    now = datetime(2026, 3, 1, 10, 0)
    last = None if age_hours is None else now - timedelta(hours=age_hours)
    assert full_resync_due(last, now, every_hours) is due


@given(st.text(max_size=24))
def test_a_mobile_is_synced_exactly_when_it_has_digits(raw: str) -> None:
    try:
        phone = phone_for_broker(1, raw)
    except MalformedMobile:
        # Not blank, and no digits or more than broker_phone.phone holds.
        assert raw.strip() and len(normalize_phone(raw)) in (0, *range(33, 100))
        return
    if phone is None:
        assert raw.strip() == ""
    else:
        assert phone == normalize_phone(raw) and phone.isascii() and phone.isdigit()


@pytest.mark.parametrize(
    ("phone", "masked", "why"),
    [
        ("1234", "****", "4 digits, fewer than 5"),
        ("12", "**", "2 digits, fewer than 5"),
        ("1" * 21, "*" * 17 + "1111", "21 digits, more than 20"),
    ],
)
def test_implausible_numbers_are_named_masked(phone, masked, why) -> None:
    row = implausible_row(7, phone)
    assert (row.broker_id, row.masked) == (7, masked)
    assert why in row.why


@pytest.mark.parametrize("phone", ["12345", "13800138000", "9" * 20])
def test_plausible_numbers_are_not_named(phone) -> None:
    assert implausible_row(7, phone) is None


def test_masking_keeps_at_most_the_last_four_digits() -> None:
    assert mask_number("13800138000") == "*******8000"
    assert mask_number("12345") == "*2345"
    assert mask_number("1234") == "****"
