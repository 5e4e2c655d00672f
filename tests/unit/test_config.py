from __future__ import annotations

import pytest

from sublessor_billing.config import (
    ALL_TUNABLES,
    BROKER_PHONE_MAX_REMOVAL_SHARE,
    FILTER_CALL_TIME_RULE_THRESHOLD,
    PAYMENT_API_TIMEOUT,
    parse_int_setting,
    parse_share_setting,
)


def test_contract_defaults() -> None:
    defaults = {t.name: t.default for t in ALL_TUNABLES}
    assert defaults["filter_call_time_rule_threshold"] == 8
    assert defaults["filter_last_call_time_rule_threshold"] == 86400
    assert defaults["payment_price_per_call"] == 40
    assert defaults["payment_api_timeout"] == 20000
    assert defaults["call400_max_messages_per_run"] == 10000
    assert defaults["broker_phone_max_removal_share"] == 0.2


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_unset_variable_means_default(raw) -> None:
    assert parse_int_setting(PAYMENT_API_TIMEOUT, raw) == 20000


def test_text_is_parsed() -> None:
    assert parse_int_setting(FILTER_CALL_TIME_RULE_THRESHOLD, " 12 ") == 12


@pytest.mark.parametrize("raw", ["8s", "1.5", "eight"])
def test_garbage_is_refused_with_the_variable_name(raw) -> None:
    with pytest.raises(ValueError, match="filter_call_time_rule_threshold"):
        parse_int_setting(FILTER_CALL_TIME_RULE_THRESHOLD, raw)


def test_below_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        parse_int_setting(PAYMENT_API_TIMEOUT, "0", minimum=1)


@pytest.mark.parametrize(
    ("raw", "share"), [(None, 0.2), (" ", 0.2), ("0", 0.0), (" 0.5 ", 0.5), ("1", 1.0)]
)
def test_a_share_is_read_between_0_and_1(raw, share) -> None:
    assert parse_share_setting(BROKER_PHONE_MAX_REMOVAL_SHARE, raw) == share


@pytest.mark.parametrize("raw", ["1.01", "-0.1", "20%", "nan", "inf", "a fifth"])
def test_a_share_outside_0_to_1_is_refused_with_the_variable_name(raw) -> None:
    with pytest.raises(
        ValueError, match="'broker_phone_max_removal_share' must be a number between 0 and 1"
    ):
        parse_share_setting(BROKER_PHONE_MAX_REMOVAL_SHARE, raw)
