"""A sync that would take too many numbers out of broker_phone refuses and writes nothing (real MariaDB).

More in test_broker_sync_numbers_leaving.py (what counts), test_broker_sync_day_window.py
(the day), test_broker_sync_allowance.py (the Param), test_broker_sync_one_transaction.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from broker_sync_db import T0, brokers, put_brokers, source_phones, table_and_cursors, target_phones

from sublessor_billing.broker_sync import (
    Allowance,
    MassRemoval,
    full_resync,
    sync_interval,
    sync_since_high_water,
)

pytestmark = pytest.mark.integration


def empty_source(source) -> None:
    with source.cursor() as cur:
        cur.execute("DELETE FROM ajk_brokerextend")
    source.commit()


@pytest.mark.parametrize("page_size", [3, 1000])
def test_a_full_resync_from_an_empty_source_refuses_and_writes_nothing(
    source, target, ten_brokers, page_size
) -> None:
    before = table_and_cursors(target)
    empty_source(source)  # truncated, restored empty, or the connection names another schema
    with pytest.raises(MassRemoval, match=r"would remove 10 numbers from the blacklist") as failure:
        full_resync(source, target, page_size=page_size)
    message = str(failure.value)
    assert "10 of 10 numbers broker_phone had at the start of the day (100.0% > 20.0%" in message
    assert "broker_phone_max_removal_share" in message
    assert '{"allow_removals_up_to": 10}' in message
    assert "Nothing was written" in message
    assert table_and_cursors(target) == before


def test_no_page_is_committed_before_the_check(source, target, ten_brokers) -> None:
    """The first pages (a changed mobile, a new broker) wait for the removal check too."""
    before = table_and_cursors(target)
    put_brokers(
        source,
        [(1, "13900000001", "2026-03-01 09:00:00"), (11, "13800000011", "2026-03-01 09:00:00")]
        + brokers(range(4, 11), "2026-03-01 09:00:00", mobile=""),
    )
    # 7 brokers leave and broker 1's old number goes: 8 numbers of 10.
    with pytest.raises(MassRemoval, match=r"8 of 10 numbers .* \(80\.0%"):
        full_resync(source, target, page_size=2)
    assert table_and_cursors(target) == before

    report = full_resync(source, target, page_size=2, allowance=Allowance("manual__1", 8))
    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 7, 2)
    assert target_phones(target) == source_phones(source)


def test_the_share_is_a_limit(source, target, ten_brokers) -> None:
    # Exactly 20 % (2 of 10) is allowed: only more than the share refuses.
    put_brokers(source, brokers([9, 10], "2026-03-01 09:00:00", mobile=""))
    assert full_resync(source, target).numbers_removed == 2
    put_brokers(source, brokers([6, 7, 8], "2026-03-01 09:00:00", mobile=""))
    with pytest.raises(MassRemoval, match=r"5 of 10 numbers .* \(50\.0% > 20\.0%"):
        full_resync(source, target)
    with pytest.raises(MassRemoval, match=r"50\.0% > 30\.0%.*at most 3 a day"):
        full_resync(source, target, max_removal_share=0.3)
    assert full_resync(source, target, max_removal_share=0.5).numbers_removed == 3
    assert target_phones(target) == source_phones(source)


def test_a_limit_of_zero_refuses_any_removal(source, target, ten_brokers) -> None:
    put_brokers(source, brokers([10], "2026-03-01 09:00:00", mobile=""))
    with pytest.raises(MassRemoval, match=r"would remove 1 number from the blacklist"):
        full_resync(source, target, max_removal_share=0)
    assert full_resync(source, target, max_removal_share=1).removed == 1


def test_an_empty_broker_phone_is_never_refused(source, target) -> None:
    assert full_resync(source, target).removed == 0  # 0 of 0, nothing in the source either
    put_brokers(source, brokers(range(1, 4)))
    assert full_resync(source, target, max_removal_share=0).added == 3


def test_an_interval_that_would_empty_the_table_refuses_and_keeps_the_high_water(
    source, target, ten_brokers
) -> None:
    before = table_and_cursors(target)
    # The broker system empties every mobile in one statement: all stamped in one interval.
    put_brokers(source, brokers(range(1, 11), "2026-03-01 10:01:00", mobile=""))
    put_brokers(source, [(12, "13800000012", "2026-03-01 10:01:00")])
    interval = {"start": T0, "end": T0 + timedelta(minutes=5), "overlap_seconds": 900}
    with pytest.raises(MassRemoval, match=r"would remove 10 numbers"):
        sync_interval(source, target, **interval, page_size=4)
    assert table_and_cursors(target) == before

    allowed = Allowance("manual__2", 10)
    report = sync_interval(source, target, **interval, page_size=4, allowance=allowed)
    assert (report.added, report.removed) == (1, 10)
    assert target_phones(target) == {(12, "13800000012")}


def test_a_manual_run_without_interval_is_held_to_the_limit_too(
    source, target, ten_brokers
) -> None:
    before = table_and_cursors(target)
    with source.cursor() as cur:
        cur.execute(
            "UPDATE ajk_brokerextend SET UserMobile = '', updated_datetime = NOW() - INTERVAL 1 MINUTE"
        )
    source.commit()
    with pytest.raises(
        MassRemoval, match=r"\(since_high_water\) refused: it would remove 10 numbers"
    ):
        sync_since_high_water(source, target, overlap_seconds=900, page_size=4)
    assert table_and_cursors(target) == before
    allowed = Allowance("manual__3", 10)
    report = sync_since_high_water(source, target, overlap_seconds=900, allowance=allowed)
    assert report.removed == 10 and target_phones(target) == set()
