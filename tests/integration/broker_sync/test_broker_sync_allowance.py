"""allow_removals_up_to: a bounded allowance of one DAG run, recorded (real MariaDB)."""

from __future__ import annotations

import pytest
from broker_sync_db import brokers, put_brokers, source_phones, table_and_cursors, target_phones

from sublessor_billing.broker_sync import Allowance, MassRemoval, full_resync

pytestmark = pytest.mark.integration


def allowances(target) -> dict:
    with target.cursor() as cur:
        cur.execute("SELECT run_id, up_to, removed FROM broker_phone_removal_allowance")
        rows = {run_id: (up_to, removed) for run_id, up_to, removed in cur.fetchall()}
    target.rollback()
    return rows


def leave(source, ids, stamp) -> None:
    put_brokers(source, brokers(ids, stamp, mobile=""))


def test_an_allowance_is_a_bound_not_a_switch(source, target, ten_brokers) -> None:
    leave(source, range(1, 11), "2026-03-01 09:00:00")  # every broker left
    before = table_and_cursors(target)
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target, allowance=Allowance("manual__a", 9))
    message = str(failure.value)
    assert "would remove 10 numbers" in message and "allow_removals_up_to is 9" in message
    assert table_and_cursors(target) == before and allowances(target) == {}

    report = full_resync(source, target, allowance=Allowance("manual__b", 10))
    assert report.numbers_removed == 10
    assert target_phones(target) == set() == source_phones(source)
    assert allowances(target) == {"manual__b": (10, 10)}


def test_a_retry_of_the_run_reuses_what_is_left_of_its_allowance(
    source, target, ten_brokers
) -> None:
    leave(source, [1, 2, 3], "2026-03-01 09:00:00")
    assert full_resync(source, target, allowance=Allowance("manual__r", 5)).numbers_removed == 3
    assert allowances(target) == {"manual__r": (5, 3)}

    # The same run again (a retry, or the run cleared): 2 are left of its 5.
    leave(source, [4, 5, 6], "2026-03-01 09:10:00")
    with pytest.raises(MassRemoval, match=r"2 left of allow_removals_up_to 5"):
        full_resync(source, target, allowance=Allowance("manual__r", 5))
    leave(source, [6], "2026-03-01 09:20:00")
    put_brokers(source, [(6, "13800000006", "2026-03-01 09:20:00")])
    assert full_resync(source, target, allowance=Allowance("manual__r", 5)).numbers_removed == 2
    assert allowances(target) == {"manual__r": (5, 5)}


def test_an_allowance_run_restarts_the_days_count_from_the_table_it_leaves(
    source, target, ten_brokers
) -> None:
    leave(source, [1, 2, 3, 4, 5], "2026-03-01 09:00:00")
    report = full_resync(source, target, allowance=Allowance("manual__c", 5))
    assert (report.numbers_removed, report.day_removed, report.day_base) == (5, 0, 5)
    # Later runs of the day have the share of the table the allowance left: 1 of 5.
    leave(source, [6], "2026-03-01 09:10:00")
    report = full_resync(source, target)
    assert (report.numbers_removed, report.day_removed, report.day_base) == (1, 1, 5)
    leave(source, [7], "2026-03-01 09:20:00")
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target)
    assert (failure.value.would_remove, failure.value.total) == (1, 5)


def test_an_allowance_that_removes_nothing_gives_the_day_nothing_back(
    source, target, ten_brokers
) -> None:
    leave(source, [1, 2], "2026-03-01 09:00:00")
    assert full_resync(source, target).day_removed == 2  # the day's share (20% of 10) used
    report = full_resync(source, target, allowance=Allowance("manual__e", 1))
    assert (report.numbers_removed, report.day_removed, report.day_base) == (0, 2, 10)
    leave(source, [3], "2026-03-01 09:10:00")
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target)
    assert (failure.value.would_remove, failure.value.total) == (1, 10)
    assert len(target_phones(target)) == 8


def test_an_empty_source_after_an_allowance_run_the_same_day_is_refused(source, target) -> None:
    """80 of 100 brokers really left; later that day the source is restored empty."""
    put_brokers(source, brokers(range(1, 101)))
    full_resync(source, target)
    leave(source, range(1, 81), "2026-03-01 09:00:00")
    assert full_resync(source, target, allowance=Allowance("manual__d", 80)).numbers_removed == 80
    with source.cursor() as cur:
        cur.execute("DELETE FROM ajk_brokerextend")
    source.commit()
    before = table_and_cursors(target)
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target)
    assert (failure.value.would_remove, failure.value.total) == (20, 20)
    assert table_and_cursors(target) == before and len(target_phones(target)) == 20


def first_used_earlier(target, run_id: str, hours: int) -> None:
    with target.cursor() as cur:
        cur.execute(
            "UPDATE broker_phone_removal_allowance SET created_at = created_at - INTERVAL %s HOUR"
            " WHERE run_id = %s",
            (hours, run_id),
        )
    target.commit()


def test_an_allowance_expires_six_hours_after_its_first_use(source, target, ten_brokers) -> None:
    """A manual run cleared and run again days later is held to the share, as any run."""
    old = Allowance("manual__old", 8)
    leave(source, [1], "2026-03-01 09:00:00")
    assert full_resync(source, target, allowance=old).numbers_removed == 1
    first_used_earlier(target, "manual__old", 5)  # still valid 5 h on
    leave(source, [2, 3, 4], "2026-03-01 09:10:00")  # 3 of 9: beyond the share
    assert full_resync(source, target, allowance=old).numbers_removed == 3
    assert allowances(target) == {"manual__old": (8, 4)}

    first_used_earlier(target, "manual__old", 2)  # 7 h after its first use
    leave(source, [5, 6], "2026-03-01 09:20:00")  # 2 of the 6 left: beyond the share
    before = table_and_cursors(target)
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target, allowance=old)
    message = str(failure.value)
    assert "allow_removals_up_to=8 has expired" in message and "more than 6 h ago" in message
    assert (failure.value.would_remove, failure.value.total) == (2, 6)
    assert table_and_cursors(target) == before and allowances(target) == {"manual__old": (8, 4)}
    # Within the share the run goes through, as any run would; its allowance is untouched.
    put_brokers(source, brokers([6], "2026-03-01 09:30:00"))
    report = full_resync(source, target, allowance=old)
    assert (report.numbers_removed, report.day_removed) == (1, 1)
    assert allowances(target) == {"manual__old": (8, 4)}
