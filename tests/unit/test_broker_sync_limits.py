"""Rules of the removal guard: the Asia/Shanghai day, the share, the run's allowance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sublessor_billing.broker_sync.limits import (
    Allowance,
    allowance_from_params,
    check_share,
    day_start,
    exceeds,
    most_within,
    within_allowance,
    within_day_share,
)
from sublessor_billing.config import SettingError


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC), datetime(2026, 3, 1)),  # 23:59:59 local
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), datetime(2026, 3, 2)),  # midnight local
        (datetime(2025, 12, 31, 20, 0, tzinfo=UTC), datetime(2026, 1, 1)),
    ],
)
def test_the_day_is_the_asia_shanghai_day(now: datetime, day: datetime) -> None:
    assert day_start(now) == day


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        day_start(datetime(2026, 3, 1, 2, 0))


@pytest.mark.parametrize(
    ("removals", "total", "share", "over"),
    [
        (2, 10, 0.2, False),  # exactly the share
        (3, 10, 0.2, True),
        (29, 100, 0.29, False),  # no float rounding against the operator
        (3, 8, 0.375, False),
        (0, 0, 0.0, False),  # 0 of 0
        (1, 0, 0.5, True),  # something out of nothing
        (1, 10, 0.0, True),
    ],
)
def test_exceeds_is_strictly_more_than_the_share(removals, total, share, over) -> None:
    assert exceeds(removals, total, share) is over


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=1))
def test_most_within_is_the_largest_count_not_over_the_share(total: int, share: float) -> None:
    count = most_within(total, share)
    assert 0 <= count <= total
    assert not exceeds(count, total, share)
    assert count == total or exceeds(count + 1, total, share)


def test_the_days_share_adds_the_runs_of_the_day() -> None:
    day = {"day_base": 10, "max_share": 0.2}
    assert within_day_share(2, day_removed=0, **day)
    assert not within_day_share(1, day_removed=2, **day)  # 3 of 10
    assert within_day_share(0, day_removed=5, **day)  # nothing leaves: never refused
    assert within_day_share(10, day_removed=0, day_base=10, max_share=1)  # the guard is off


def test_an_allowance_bounds_the_run_over_its_tries() -> None:
    assert within_allowance(5, up_to=5, used=0)
    assert not within_allowance(6, up_to=5, used=0)
    assert within_allowance(2, up_to=5, used=3)
    assert not within_allowance(3, up_to=5, used=3)
    assert within_allowance(0, up_to=5, used=7)  # more used than allowed: nothing more


MANUAL = {"run_id": "manual__2026-03-01", "run_type": "manual"}


@pytest.mark.parametrize(
    "params", [{}, {"allow_removals_up_to": 0}, {"allow_removals_up_to": None}]
)
def test_no_allowance_means_the_share(params) -> None:
    assert allowance_from_params(params, **MANUAL) is None
    # 0 is fine on every kind of run: scheduled runs and backfills carry the default.
    assert allowance_from_params(params, run_id="backfill__x", run_type="backfill") is None


def test_an_allowance_belongs_to_its_manual_run() -> None:
    allowance = allowance_from_params({"allow_removals_up_to": 500}, **MANUAL)
    assert allowance == Allowance("manual__2026-03-01", 500)


@pytest.mark.parametrize(
    ("params", "run_type", "run_id", "says"),
    [
        ({"allow_removals_up_to": 5}, "backfill", "backfill__x", "not on a backfill"),
        ({"allow_removals_up_to": 5}, "scheduled", "scheduled__x", "manually triggered run"),
        ({"allow_removals_up_to": 5}, "operator_triggered", "t", "manually triggered run"),
        ({"allow_removals_up_to": 5}, "manual", None, "manually triggered run"),
        ({"allow_removals_up_to": -1}, "manual", "m", "0 or more"),
        ({"allow_removals_up_to": "5"}, "manual", "m", "0 or more"),
        ({"allow_removals_up_to": True}, "manual", "m", "0 or more"),
        ({"allow_removals_up_to": 1.5}, "manual", "m", "0 or more"),
        ({"allow_mass_removal": True}, "manual", "m", "replaced by allow_removals_up_to"),
    ],
)
def test_an_allowance_that_cannot_be_honoured_says_what_to_set(
    params, run_type, run_id, says
) -> None:
    with pytest.raises(SettingError, match="allow_removals_up_to") as failure:
        allowance_from_params(params, run_id=run_id, run_type=run_type)
    assert says in str(failure.value)
    assert '{"allow_removals_up_to": N}' in str(failure.value)


def test_an_old_allow_mass_removal_false_is_harmless() -> None:
    assert allowance_from_params({"allow_mass_removal": False}, **MANUAL) is None


@pytest.mark.parametrize("share", [-0.1, 1.01, float("nan"), "0.2", True, None])
def test_a_share_outside_0_to_1_is_a_setting_error(share) -> None:
    with pytest.raises(SettingError, match="broker_phone_max_removal_share"):
        check_share(share)
