"""Incremental sync against real MariaDB: ties, late commits, changes, backfills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from broker_sync_db import job_cursor, put_brokers, source_phones, target_phones

from sublessor_billing.broker_sync import sync_interval

pytestmark = pytest.mark.integration

UTC = UTC
# 02:00-02:05 UTC is 10:00-10:05 in Asia/Shanghai, the source's clock.
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)


def run(source, target, start, *, overlap=900, page_size=100):
    # No removal limit: these small tables lose most of their rows when a broker
    # leaves; the limit has its own tests (test_broker_sync_mass_removal.py).
    return sync_interval(
        source,
        target,
        start=start,
        end=start + STEP,
        overlap_seconds=overlap,
        page_size=page_size,
        max_removal_share=1,
    )


def test_interval_is_read_in_shanghai_time_with_overlap(source, target) -> None:
    put_brokers(
        source,
        [
            (1, "13800000001", "2026-03-01 10:04:59"),  # in the interval (local)
            (2, "13800000002", "2026-03-01 09:45:00"),  # first second of the overlap
            (3, "13800000003", "2026-03-01 09:44:59"),  # before the overlap
            (4, "13800000004", "2026-03-01 10:05:00"),  # the next interval
            (5, "13800000005", "2026-03-01 02:04:59"),  # the UTC wall time: not a local time
        ],
    )
    report = run(source, target, T0)
    assert target_phones(target) == {(1, "13800000001"), (2, "13800000002")}
    assert (report.added, report.changed, report.removed) == (2, 0, 0)
    assert report.window_start == "2026-03-01 09:45:00"
    assert report.window_end == "2026-03-01 10:05:00"
    assert job_cursor(target) == (None, datetime(2026, 3, 1, 10, 5))


def test_boundary_ties_across_pages(source, target) -> None:
    # 250 rows share the interval's last second, 250 share the next interval's
    # first second: pages of 37 must neither skip nor repeat any of them.
    last = [(i, f"1390000{i:04d}", "2026-03-01 10:04:59") for i in range(1, 251)]
    first_next = [(i, f"1370000{i:04d}", "2026-03-01 10:05:00") for i in range(251, 501)]
    put_brokers(source, last + first_next)

    report = run(source, target, T0, page_size=37)
    assert report.read == 250 and report.added == 250
    assert target_phones(target) == source_phones(source, updated_before="2026-03-01 10:05:00")

    report = run(source, target, T0 + STEP, page_size=37)
    assert (report.read, report.added, report.unchanged) == (500, 250, 250)
    assert target_phones(target) == source_phones(source)


def test_late_commit_inside_the_overlap_is_picked_up(source, target) -> None:
    put_brokers(source, [(1, "13800000001", "2026-03-01 10:03:00")])
    run(source, target, T0)
    # A long transaction commits only now a row stamped before the last run's end.
    put_brokers(source, [(2, "13800000002", "2026-03-01 10:01:30")])
    assert (2, "13800000002") not in target_phones(target)

    report = run(source, target, T0 + STEP)
    assert report.added == 1 and report.unchanged == 1
    assert target_phones(target) == source_phones(source)


def test_emptied_changed_and_reassigned_mobiles(source, target) -> None:
    put_brokers(
        source,
        [
            (1, "138-0013-8000", "2026-03-01 10:01:00"),
            (2, "+86 139 0000 0002", "2026-03-01 10:01:00"),
            (3, "13900000003", "2026-03-01 10:01:00"),
            (4, "021-1234 5678", "2026-03-01 10:01:00"),
        ],
    )
    run(source, target, T0)
    assert target_phones(target) == {
        (1, "13800138000"),
        (2, "13900000002"),
        (3, "13900000003"),
        (4, "02112345678"),
    }
    put_brokers(
        source,
        [
            (1, "", "2026-03-01 10:06:00"),  # the broker left
            (
                2,
                "13700000002",
                "2026-03-01 10:06:00",
            ),  # new mobile: 13900000002 now an ordinary caller
            (3, "  ", "2026-03-01 10:06:00"),  # blank: no mobile
            (4, "021-1234 5678", "2026-03-01 10:06:00"),  # touched, same number
        ],
    )
    report = run(source, target, T0 + STEP)
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 1, 2, 1)
    assert target_phones(target) == {(2, "13700000002"), (4, "02112345678")}
    assert target_phones(target) == source_phones(source)
    assert "13900000002" not in {phone for _, phone in target_phones(target)}


def test_backfill_of_a_past_range_is_exact_and_idempotent(source, target) -> None:
    day = timedelta(days=1)
    put_brokers(
        source,
        [
            (10, "13800000010", "2026-02-27 10:02:00"),  # 3 days ago: the backfilled interval
            (11, "13800000011", "2026-02-27 09:50:00"),  # its overlap
            (12, "13800000012", "2026-02-27 10:20:00"),  # after it
            (13, "13800000013", "2026-03-01 10:02:00"),  # today
        ],
    )
    run(source, target, T0)
    assert target_phones(target) == {(13, "13800000013")}

    report = run(source, target, T0 - 2 * day)
    assert target_phones(target) == {(10, "13800000010"), (11, "13800000011"), (13, "13800000013")}
    assert report.added == 2
    # The cursor's high-water does not move back for a backfill.
    assert job_cursor(target)[1] == datetime(2026, 3, 1, 10, 5)

    # Someone damaged the table: the same backfill repairs it, and changes nothing more.
    with target.cursor() as cur:
        cur.execute("UPDATE broker_phone SET phone = '13999999999' WHERE broker_id = 10")
    target.commit()
    again = run(source, target, T0 - 2 * day)
    assert (again.added, again.changed, again.removed, again.unchanged) == (0, 1, 0, 1)
    again = run(source, target, T0 - 2 * day)
    assert (again.added, again.changed, again.removed, again.unchanged) == (0, 0, 0, 2)

    # Backfilling the remaining day covers the rest: the table equals the source.
    for k in range(12):
        run(source, target, datetime(2026, 2, 27, 2, 5, tzinfo=UTC) + k * STEP)
    assert target_phones(target) == source_phones(source)


def test_skipped_intervals_are_read_from_the_high_water(source, target) -> None:
    put_brokers(source, [(1, "13800000001", "2026-03-01 10:03:00")])
    run(source, target, T0)
    # The DAG was paused for an hour (catchup off): the next run starts at 03:05 UTC.
    put_brokers(
        source,
        [
            (2, "13800000002", "2026-03-01 10:20:00"),
            (3, "13800000003", "2026-03-01 11:02:00"),
            (1, "", "2026-03-01 10:30:00"),
        ],
    )
    report = run(source, target, T0 + 13 * STEP)
    assert report.resumed_from == "2026-03-01 10:05:00"
    assert report.window_start == "2026-03-01 09:50:00"
    assert (report.added, report.removed) == (2, 1)
    assert target_phones(target) == source_phones(source)
