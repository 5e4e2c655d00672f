"""A sync that would remove too much of broker_phone refuses and writes nothing (real MariaDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from broker_sync_db import put_brokers, source_phones, target_phones

from sublessor_billing.broker_sync import (
    full_resync,
    sync_interval,
    sync_since_high_water,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def brokers(ids, stamp="2025-06-01 08:00:00", mobile="1380000{:04d}"):
    return [(i, mobile.format(i) if mobile else "", stamp) for i in ids]


def table_and_cursors(target) -> tuple:
    """Everything a sync writes: broker_phone rows (with their source time) and job_cursor."""
    with target.cursor() as cur:
        cur.execute("SELECT broker_id, phone, source_updated_datetime FROM broker_phone")
        rows = sorted(cur.fetchall())
        cur.execute("SELECT name, position_id, position_time FROM job_cursor ORDER BY name")
        cursors = cur.fetchall()
    target.rollback()
    return rows, cursors


def empty_source(source) -> None:
    with source.cursor() as cur:
        cur.execute("DELETE FROM ajk_brokerextend")
    source.commit()


@pytest.fixture
def ten_brokers(source, target):
    """broker_phone synced from ten brokers (ids 1..10)."""
    put_brokers(source, brokers(range(1, 11)))
    full_resync(source, target)
    assert len(target_phones(target)) == 10


@pytest.mark.parametrize("page_size", [3, 1000])
def test_a_full_resync_from_an_empty_source_refuses_and_writes_nothing(
    source, target, ten_brokers, page_size
) -> None:
    before = table_and_cursors(target)
    empty_source(source)  # truncated, restored empty, or the connection names another schema
    with pytest.raises(RuntimeError, match=r"would remove 10 of 10 broker_phone rows") as failure:
        full_resync(source, target, page_size=page_size)
    message = str(failure.value)
    assert "100.0% > 20.0%" in message
    assert "broker_phone_max_removal_share" in message and "allow_mass_removal" in message
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
    with pytest.raises(RuntimeError, match=r"would remove 7 of 10 broker_phone rows \(70\.0%"):
        full_resync(source, target, page_size=2)
    assert table_and_cursors(target) == before

    report = full_resync(source, target, page_size=2, allow_mass_removal=True)
    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 7, 2)
    assert target_phones(target) == source_phones(source)


def test_the_share_is_a_limit(source, target, ten_brokers) -> None:
    # Exactly 20 % (2 of 10) is allowed: only more than the share refuses.
    put_brokers(source, brokers([9, 10], "2026-03-01 09:00:00", mobile=""))
    assert full_resync(source, target).removed == 2
    put_brokers(source, brokers([6, 7, 8], "2026-03-01 09:00:00", mobile=""))
    with pytest.raises(
        RuntimeError, match=r"would remove 3 of 8 broker_phone rows \(37\.5% > 20\.0%"
    ):
        full_resync(source, target)
    with pytest.raises(RuntimeError, match=r"37\.5% > 30\.0%"):
        full_resync(source, target, max_removal_share=0.3)
    assert full_resync(source, target, max_removal_share=0.375).removed == 3
    assert target_phones(target) == source_phones(source)


def test_a_limit_of_zero_refuses_any_removal(source, target, ten_brokers) -> None:
    put_brokers(source, brokers([10], "2026-03-01 09:00:00", mobile=""))
    with pytest.raises(RuntimeError, match=r"would remove 1 of 10 broker_phone rows"):
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
    with pytest.raises(RuntimeError, match=r"would remove 10 of 10 broker_phone rows"):
        sync_interval(source, target, **interval, page_size=4)
    assert table_and_cursors(target) == before

    report = sync_interval(source, target, **interval, page_size=4, allow_mass_removal=True)
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
        RuntimeError, match=r"\(since_high_water\) refused: it would remove 10 of 10"
    ):
        sync_since_high_water(source, target, overlap_seconds=900, page_size=4)
    assert table_and_cursors(target) == before
    report = sync_since_high_water(source, target, overlap_seconds=900, allow_mass_removal=True)
    assert report.removed == 10 and target_phones(target) == set()


def test_a_source_emptied_during_the_sync_stops_at_the_limit(
    source, target, ten_brokers, monkeypatch
) -> None:
    """The check reads the source first; rows lost after it cannot push removals past the limit."""
    from sublessor_billing.broker_sync import removal

    real_plan = removal.plan_removals

    def plan_then_lose_the_source(*args, **kwargs):
        planned = real_plan(*args, **kwargs)
        with source.cursor() as cur:
            cur.execute("DELETE FROM ajk_brokerextend WHERE BrokerId > 5")
        source.commit()
        return planned

    monkeypatch.setattr(removal, "plan_removals", plan_then_lose_the_source)
    put_brokers(source, brokers([1], "2026-03-01 09:00:00", mobile=""))
    with pytest.raises(RuntimeError, match=r"changed while it was synced") as failure:
        full_resync(source, target, page_size=2)
    assert "removed 1 of 10" in str(failure.value)
    # Pages up to the limit stay done; the page that would pass it was rolled back.
    assert target_phones(target) == {(i, f"1380000{i:04d}") for i in range(2, 11)}
