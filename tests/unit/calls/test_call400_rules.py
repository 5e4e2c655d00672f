"""Filter rules 2-5 in order, the repeat window's edges and judging order."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sublessor_billing.calls.rules import (
    Candidate,
    FilterRule,
    base_rule,
    has_repeat,
    judge_calls,
)

T0 = datetime(2026, 3, 1, 10, 0, 0)
DAY = 86400


def call(id: int, *, caller="13800138000", sub=7, status=1, at=0, duration=60) -> Candidate:
    return Candidate(id, caller, sub, status, T0 + timedelta(seconds=at), duration)


def judge(calls, valid=None, brokers=frozenset(), short=8, window=DAY):
    return judge_calls(
        calls, valid or {}, set(brokers), short_threshold=short, repeat_window=window
    )


@pytest.mark.parametrize(
    ("status", "duration", "expected"),
    [
        (1, 9, None),
        (1, 8, FilterRule.TOO_SHORT),
        (1, 0, FilterRule.TOO_SHORT),
        (0, 100, FilterRule.NOT_CONNECTED),
        (2, 3, FilterRule.NOT_CONNECTED),
    ],
)
def test_base_rules_in_order(status, duration, expected) -> None:
    assert base_rule(status, duration, 8) == expected


def test_repeat_window_is_strict_on_both_sides() -> None:
    starts = [T0]
    assert has_repeat(starts, T0 + timedelta(seconds=DAY - 1), timedelta(seconds=DAY))
    assert has_repeat(starts, T0 - timedelta(seconds=DAY - 1), timedelta(seconds=DAY))
    assert not has_repeat(starts, T0 + timedelta(seconds=DAY), timedelta(seconds=DAY))
    assert not has_repeat(starts, T0 - timedelta(seconds=DAY), timedelta(seconds=DAY))
    assert not has_repeat([], T0, timedelta(seconds=DAY))


def test_calls_are_judged_in_start_time_order_not_input_order() -> None:
    later, earlier = call(1, at=DAY - 1), call(2, at=0)
    assert judge([later, earlier]) == {2: FilterRule.VALID, 1: FilterRule.REPEAT}


def test_same_start_time_is_decided_by_arrival() -> None:
    assert judge([call(5, at=0), call(3, at=0)]) == {3: FilterRule.VALID, 5: FilterRule.REPEAT}


def test_exactly_one_window_apart_both_valid() -> None:
    assert judge([call(1, at=0), call(2, at=DAY), call(3, at=2 * DAY - 1)]) == {
        1: FilterRule.VALID,
        2: FilterRule.VALID,
        3: FilterRule.REPEAT,
    }


def test_only_valid_calls_count_for_the_repeat_rule() -> None:
    decided = judge([call(1, at=0, duration=5), call(2, at=10, status=0), call(3, at=20)])
    assert decided == {1: FilterRule.TOO_SHORT, 2: FilterRule.NOT_CONNECTED, 3: FilterRule.VALID}


def test_existing_valid_call_after_a_late_arrival_makes_it_a_repeat() -> None:
    pair = ("13800138000", 7)
    decided = judge([call(1, at=0)], valid={pair: [T0 + timedelta(seconds=3600)]})
    assert decided == {1: FilterRule.REPEAT}


def test_pairs_are_per_caller_and_sublessor() -> None:
    decided = judge([call(1), call(2, sub=8), call(3, caller="13900139000")])
    assert set(decided.values()) == {FilterRule.VALID}


def test_withheld_caller_never_repeat_nor_broker() -> None:
    decided = judge([call(1, caller=""), call(2, caller="")], brokers={""})
    assert decided == {1: FilterRule.VALID, 2: FilterRule.VALID}


def test_repeat_wins_over_broker_and_broker_over_valid() -> None:
    pair = ("13800138000", 7)
    assert judge([call(1)], valid={pair: [T0]}, brokers={"13800138000"}) == {1: FilterRule.REPEAT}
    assert judge([call(1)], brokers={"13800138000"}) == {1: FilterRule.BROKER}


def test_broker_and_short_calls_do_not_block_later_calls() -> None:
    decided = judge([call(1, at=0)], brokers={"13800138000"})
    assert decided == {1: FilterRule.BROKER}
    assert judge([call(1, at=0, duration=8), call(2, at=5, duration=9)]) == {
        1: FilterRule.TOO_SHORT,
        2: FilterRule.VALID,
    }


def test_thresholds_are_parameters() -> None:
    assert judge([call(1, duration=20)], short=20) == {1: FilterRule.TOO_SHORT}
    assert judge([call(1, at=0), call(2, at=60)], window=60) == {
        1: FilterRule.VALID,
        2: FilterRule.VALID,
    }
    assert judge([call(1, at=0), call(2, at=59)], window=60) == {
        1: FilterRule.VALID,
        2: FilterRule.REPEAT,
    }
