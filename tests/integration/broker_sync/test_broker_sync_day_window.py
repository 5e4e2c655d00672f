"""Removals add up over an Asia/Shanghai day against the table as it was at its start (real MariaDB)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from broker_sync_db import brokers, put_brokers, source_phones, table_and_cursors, target_phones

from sublessor_billing.broker_sync import MassRemoval, full_resync

pytestmark = pytest.mark.integration


def day_rows(target) -> dict:
    with target.cursor() as cur:
        cur.execute(
            "SELECT name, position_id, position_time FROM job_cursor"
            " WHERE name LIKE 'broker_phone_sync_day%%'"
        )
        rows = {name: (count, day) for name, count, day in cur.fetchall()}
    target.rollback()
    return rows


def a_day_passes(target) -> None:
    with target.cursor() as cur:
        cur.execute(
            "UPDATE job_cursor SET position_time = position_time - INTERVAL 1 DAY"
            " WHERE name LIKE 'broker_phone_sync_day%%'"
        )
    target.commit()


def test_small_runs_cannot_add_up_past_the_share_in_one_day(source, target, ten_brokers) -> None:
    # 2 of 10 numbers (20 %): allowed.
    put_brokers(source, brokers([9, 10], "2026-03-01 09:00:00", mobile=""))
    assert full_resync(source, target).numbers_removed == 2
    # 1 of the 8 left is 12.5 %, but the day's 3 of 10 is 30 %: refused.
    put_brokers(source, brokers([8], "2026-03-01 09:10:00", mobile=""))
    before = table_and_cursors(target)
    with pytest.raises(MassRemoval) as failure:
        full_resync(source, target)
    message = str(failure.value)
    assert "today" in message and "2 already" in message and "3 of 10" in message
    assert table_and_cursors(target) == before

    # The next day starts from the table as it is then (8 numbers).
    a_day_passes(target)
    report = full_resync(source, target)
    assert (report.numbers_removed, report.day_removed, report.day_base) == (1, 1, 8)
    assert target_phones(target) == source_phones(source)


def test_the_share_is_of_the_table_at_the_start_of_the_day(source, target, ten_brokers) -> None:
    """Numbers added during the day do not raise the day's limit."""
    put_brokers(source, brokers(range(11, 21), "2026-03-01 09:00:00"))
    assert full_resync(source, target).added == 10  # 20 numbers now, 10 at the day's start
    put_brokers(source, brokers([1, 2, 3], "2026-03-01 09:10:00", mobile=""))
    with pytest.raises(MassRemoval) as failure:  # 3 of 20 is 15 %; 3 of 10 is 30 %
        full_resync(source, target)
    assert (failure.value.would_remove, failure.value.total) == (3, 10)


def test_the_day_is_counted_in_job_cursor(source, target) -> None:
    put_brokers(source, brokers(range(1, 11)))
    full_resync(source, target, now=datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    put_brokers(source, brokers([10], "2026-03-01 09:00:00", mobile=""))
    # 2026-03-01 16:30 UTC is already 2026-03-02 00:30 in Asia/Shanghai.
    full_resync(source, target, now=datetime(2026, 3, 1, 16, 30, tzinfo=UTC))
    midnight = datetime(2026, 3, 2)
    assert day_rows(target) == {
        "broker_phone_sync_day": (1, midnight),
        "broker_phone_sync_day_base": (10, midnight),
    }
    put_brokers(source, brokers([9], "2026-03-01 09:10:00", mobile=""))
    full_resync(source, target, now=datetime(2026, 3, 2, 15, 59, tzinfo=UTC))  # 23:59 local
    assert day_rows(target)["broker_phone_sync_day"] == (2, midnight)
    put_brokers(source, brokers([8], "2026-03-01 09:20:00", mobile=""))
    full_resync(source, target, now=datetime(2026, 3, 2, 16, 0, tzinfo=UTC))  # 00:00 local
    assert day_rows(target) == {
        "broker_phone_sync_day": (1, datetime(2026, 3, 3)),
        "broker_phone_sync_day_base": (8, datetime(2026, 3, 3)),
    }
    # A clock stepped back over midnight counts in the later day: no fresh share.
    put_brokers(source, brokers([7], "2026-03-01 09:30:00", mobile=""))
    with pytest.raises(MassRemoval) as failure:  # 2 of 8 today
        full_resync(source, target, now=datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    assert (failure.value.would_remove, failure.value.total) == (1, 8)


def test_a_table_empty_at_the_start_of_the_day_takes_its_base_later(source, target) -> None:
    """The first sync fills an empty table; removals later that day are measured against it."""
    put_brokers(source, brokers(range(1, 11)))
    full_resync(source, target)  # 0 numbers at the day's start
    put_brokers(source, brokers([10], "2026-03-01 09:00:00", mobile=""))
    report = full_resync(source, target)
    assert (report.numbers_removed, report.day_base) == (1, 10)
