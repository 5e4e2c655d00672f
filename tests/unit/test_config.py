"""Tunables: the contract's defaults, and each Variable's valid range (refusals name all three)."""

from __future__ import annotations

import math

import pytest

from sublessor_billing.broker_sync import MIN_OVERLAP_SECONDS
from sublessor_billing.config import (
    ALL_TUNABLES,
    BILLING_ALERT_TUNABLES,
    BROKER_PHONE_MAX_REMOVAL_SHARE,
    BROKER_PHONE_SYNC_OVERLAP,
    FILTER_CALL_TIME_RULE_THRESHOLD,
    FILTER_LAST_CALL_TIME_RULE_THRESHOLD,
    PAYMENT_API_TIMEOUT,
    SettingError,
    parse_int_setting,
    parse_share_setting,
)

INT_TUNABLES = [
    t for t in ALL_TUNABLES + BILLING_ALERT_TUNABLES if t is not BROKER_PHONE_MAX_REMOVAL_SHARE
]

# The decided ranges (README.md, "Configuration"): a change here is a change of the docs.
RANGES = {
    "filter_call_time_rule_threshold": (1, 3600),
    "filter_last_call_time_rule_threshold": (60, 2_592_000),
    "payment_price_per_call": (1, 1000),
    "payment_api_timeout": (100, 120_000),
    "call400_max_messages_per_run": (1, 1_000_000),
    "call400_sensor_timeout": (1, 3600),
    "call400_charge_shards": (1, 16),
    "broker_phone_sync_overlap_seconds": (600, 86400),
    "broker_phone_full_resync_hours": (0, 8760),
    "broker_phone_max_removal_share": (0, 1),
    "accounting_income_batch_size": (1, 100_000),
    "billing_alert_pending_minutes": (1, 1440),
    "billing_alert_no_success_minutes": (1, 1440),
    "billing_alert_repeat_minutes": (1, 1440),
}


def test_contract_defaults() -> None:
    defaults = {t.name: t.default for t in ALL_TUNABLES}
    assert defaults["filter_call_time_rule_threshold"] == 8
    assert defaults["filter_last_call_time_rule_threshold"] == 86400
    assert defaults["payment_price_per_call"] == 40
    assert defaults["payment_api_timeout"] == 20000
    assert defaults["call400_max_messages_per_run"] == 10000
    assert defaults["broker_phone_max_removal_share"] == 0.2


def test_every_tunable_has_its_decided_range_and_its_default_lies_in_it() -> None:
    tunables = ALL_TUNABLES + BILLING_ALERT_TUNABLES
    assert {t.name: (t.minimum, t.maximum) for t in tunables} == RANGES
    for t in tunables:
        assert t.minimum <= t.default <= t.maximum < math.inf, t.name
    assert BROKER_PHONE_SYNC_OVERLAP.minimum == MIN_OVERLAP_SECONDS


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_unset_variable_means_default(raw) -> None:
    assert parse_int_setting(PAYMENT_API_TIMEOUT, raw) == 20000


def test_text_is_parsed() -> None:
    assert parse_int_setting(FILTER_CALL_TIME_RULE_THRESHOLD, " 12 ") == 12


@pytest.mark.parametrize("tunable", INT_TUNABLES, ids=lambda t: t.name)
def test_both_ends_of_the_range_are_accepted(tunable) -> None:
    assert parse_int_setting(tunable, str(tunable.minimum)) == tunable.minimum
    assert parse_int_setting(tunable, str(tunable.maximum)) == tunable.maximum


@pytest.mark.parametrize("tunable", INT_TUNABLES, ids=lambda t: t.name)
@pytest.mark.parametrize("side", ["below", "above"])
def test_a_value_outside_the_range_is_refused_naming_variable_value_and_range(
    tunable, side
) -> None:
    raw = str(tunable.minimum - 1 if side == "below" else tunable.maximum + 1)
    with pytest.raises(SettingError) as refused:
        parse_int_setting(tunable, raw)
    message = str(refused.value)
    assert f"Variable {tunable.name!r}" in message
    assert f"got {raw!r}" in message
    assert f"from {tunable.minimum} to {tunable.maximum}" in message


def test_a_repeat_window_of_0_is_refused_rather_than_switching_the_rule_off() -> None:
    with pytest.raises(SettingError, match="filter_last_call_time_rule_threshold.*from 60"):
        parse_int_setting(FILTER_LAST_CALL_TIME_RULE_THRESHOLD, "0")


@pytest.mark.parametrize("raw", ["8s", "1.5", "eight", "1e3"])
def test_garbage_is_refused_with_the_variable_name(raw) -> None:
    with pytest.raises(SettingError, match=f"'filter_call_time_rule_threshold'.*got '{raw}'"):
        parse_int_setting(FILTER_CALL_TIME_RULE_THRESHOLD, raw)


def test_a_minimum_argument_only_narrows_the_range() -> None:
    assert parse_int_setting(PAYMENT_API_TIMEOUT, "100", minimum=1) == 100
    with pytest.raises(SettingError, match="from 500 to 120000"):
        parse_int_setting(PAYMENT_API_TIMEOUT, "499", minimum=500)


@pytest.mark.parametrize(
    ("raw", "share"), [(None, 0.2), (" ", 0.2), ("0", 0.0), (" 0.5 ", 0.5), ("1", 1.0)]
)
def test_a_share_is_read_between_0_and_1(raw, share) -> None:
    assert parse_share_setting(BROKER_PHONE_MAX_REMOVAL_SHARE, raw) == share


@pytest.mark.parametrize("raw", ["1.01", "-0.1", "20%", "nan", "inf", "a fifth"])
def test_a_share_outside_0_to_1_is_refused_with_the_variable_name(raw) -> None:
    with pytest.raises(
        SettingError, match="'broker_phone_max_removal_share' must be a number between 0 and 1"
    ):
        parse_share_setting(BROKER_PHONE_MAX_REMOVAL_SHARE, raw)
