"""Full resync counts, malformed rows and an unreachable source, against real MariaDB."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from broker_sync_db import T0, job_cursor, put_brokers, source_phones, target_phones
from support.net import RefusingPort

from sublessor_billing.broker_sync import Allowance, MalformedMobile, full_resync, sync_interval
from sublessor_billing.db.connect import MySqlTarget

pytestmark = pytest.mark.integration

# These small tables lose most of their rows; the removal limit has its own tests
# (test_broker_sync_mass_removal.py).
NO_LIMIT = {"max_removal_share": 1}


def source_now(source) -> datetime:
    with source.cursor() as cur:
        cur.execute("SELECT NOW()")
        now = cur.fetchone()[0]
    source.rollback()
    return now


def seed_stale_target(target) -> None:
    with target.cursor() as cur:
        cur.executemany(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) VALUES (%s, %s, %s)",
            [
                (1, "13800000001", "2026-01-01 00:00:00"),  # still right
                (2, "13800000099", "2026-01-01 00:00:00"),  # mobile changed since
                (3, "13800000003", "2026-01-01 00:00:00"),  # mobile emptied since
                (9, "13800000009", "2026-01-01 00:00:00"),  # not in the source at all
                (5000, "13800005000", "2026-01-01 00:00:00"),  # beyond the last source id
            ],
        )
    target.commit()


@pytest.mark.parametrize("page_size", [2, 3, 1000])
def test_full_resync_counts_and_equality(source, target, page_size) -> None:
    put_brokers(
        source,
        [
            (1, "13800000001", "2025-06-01 08:00:00"),
            (2, "13800000002", "2025-06-01 08:00:00"),
            (3, "", "2025-06-01 08:00:00"),
            (4, "13800000004", "2025-06-01 08:00:00"),
            (6, "+86 10 8888 8888", "2025-06-01 08:00:00"),
            (7, "", "2025-06-01 08:00:00"),
        ],
    )
    seed_stale_target(target)
    before = source_now(source)
    report = full_resync(source, target, page_size=page_size, **NO_LIMIT)
    assert (report.added, report.changed, report.removed, report.unchanged) == (2, 1, 3, 1)
    assert report.read == 6
    assert target_phones(target) == source_phones(source)
    assert job_cursor(target, "broker_phone_sync_full")[0] == 7
    # The incremental high-water and the last full resync time become the
    # resync's start on the source clock.
    assert before <= job_cursor(target)[1] <= source_now(source)
    assert job_cursor(target, "broker_phone_sync_full")[1] == job_cursor(target)[1]

    again = full_resync(source, target, page_size=page_size)
    assert (again.added, again.changed, again.removed, again.unchanged) == (0, 0, 0, 4)
    assert target_phones(target) == source_phones(source)


def test_an_allowed_full_resync_of_an_empty_source_empties_the_table(source, target) -> None:
    seed_stale_target(target)
    report = full_resync(source, target, page_size=10, allowance=Allowance("manual__1", 5))
    assert report.removed == 5
    assert target_phones(target) == set() == source_phones(source)


def interval(source, target, start=T0, page_size=5):
    return sync_interval(
        source,
        target,
        start=start,
        end=start + timedelta(minutes=5),
        overlap_seconds=900,
        page_size=page_size,
        **NO_LIMIT,
    )


def test_malformed_row_is_skipped_the_window_completes_then_the_task_fails(source, target) -> None:
    # Broker 14 had a good number; the broker system now holds a malformed one.
    with target.cursor() as cur:
        cur.execute(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime)"
            " VALUES (14, '13800000014', '2026-01-01 00:00:00')"
        )
    target.commit()
    rows = [(i, f"1380000{i:04d}", "2026-03-01 10:01:00") for i in range(1, 21)]
    rows[13] = (14, "unknown", "2026-03-01 10:01:00")  # not blank, but no number
    put_brokers(source, rows)

    with pytest.raises(MalformedMobile) as failure:
        interval(source, target)
    message = str(failure.value)
    assert "BrokerId 14 " in message and "BrokerId 13 " not in message
    assert "unknown" not in message and "13800001" not in message  # neither value shown
    assert "BrokerId 14 (UserMobile of 7 characters: no digits)" in message
    assert failure.value.broker_ids == [14] and failure.value.total == 1
    report = failure.value.report
    assert (report.added, report.malformed, report.read) == (19, 1, 20)
    assert report.as_dict()["malformed_rows"][0]["broker_id"] == 14
    # Every valid row is written, the malformed broker keeps its row, the window is done.
    assert target_phones(target) == {(i, f"1380000{i:04d}") for i in range(1, 21)}
    assert job_cursor(target) == (None, datetime(2026, 3, 1, 10, 5))

    # A retry of the same interval fails again while the row is malformed.
    with pytest.raises(MalformedMobile) as again:
        interval(source, target)
    assert (again.value.report.unchanged, again.value.broker_ids) == (19, [14])

    # The broker system fixes the row (updated_datetime moves): the next interval syncs it.
    put_brokers(source, [(14, "13900000014", "2026-03-01 10:06:00")])
    report = interval(source, target, T0 + timedelta(minutes=5))
    assert (report.changed, report.malformed) == (1, 0)
    assert target_phones(target) == source_phones(source)


def test_every_malformed_row_is_named_across_pages(source, target) -> None:
    put_brokers(
        source,
        [
            (1, "n/a", "2026-03-01 10:01:00"),
            (2, "13800000002", "2026-03-01 10:01:00"),
            (3, "无", "2026-03-01 10:01:00"),
            (4, "13800000004", "2026-03-01 10:02:00"),
        ],
    )
    with pytest.raises(MalformedMobile, match=r"BrokerId 1 .*BrokerId 3 ") as failure:
        interval(source, target, page_size=2)
    assert failure.value.report.malformed == 2
    assert target_phones(target) == {(2, "13800000002"), (4, "13800000004")}


def test_full_resync_keeps_the_row_of_a_malformed_broker(source, target) -> None:
    seed_stale_target(target)
    put_brokers(
        source,
        [
            (1, "13800000001", "2025-06-01 08:00:00"),
            (2, "--", "2025-06-01 08:00:00"),  # malformed: keeps 13800000099
            (4, "13800000004", "2025-06-01 08:00:00"),
        ],
    )
    with pytest.raises(MalformedMobile) as failure:
        full_resync(source, target, page_size=2, **NO_LIMIT)
    assert failure.value.broker_ids == [2]
    assert (failure.value.report.added, failure.value.report.removed) == (1, 3)
    assert target_phones(target) == {
        (1, "13800000001"),
        (2, "13800000099"),
        (4, "13800000004"),
    }
    # The resync completed: its time is recorded, so the periodic one is not repeated.
    assert job_cursor(target, "broker_phone_sync_full")[1] is not None


@pytest.mark.parametrize("page_size", [1, 1000])
def test_full_resync_covers_broker_id_zero(source, target, page_size) -> None:
    with target.cursor() as cur:
        cur.executemany(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) VALUES (%s, %s, %s)",
            [(0, "13800000099", "2026-01-01 00:00:00"), (1, "13800000001", "2026-01-01")],
        )
    target.commit()
    put_brokers(source, [(0, "13800000000", "2025-06-01 08:00:00"), (1, "", "2025-06-01 08:00:00")])
    report = full_resync(source, target, page_size=page_size, **NO_LIMIT)
    assert (report.changed, report.removed, report.read) == (1, 1, 2)
    assert target_phones(target) == {(0, "13800000000")}

    put_brokers(source, [(0, "", "2025-06-02 08:00:00")])
    report = full_resync(source, target, page_size=page_size, **NO_LIMIT)
    assert report.removed == 1
    assert target_phones(target) == set()


def test_overlap_below_ten_minutes_is_refused(source, target) -> None:
    with pytest.raises(ValueError, match="below the minimum 600s"):
        sync_interval(source, target, start=T0, end=T0 + timedelta(minutes=5), overlap_seconds=300)


def test_unreachable_source_names_the_connection(
    user_prop_target: MySqlTarget, airflow_connections, airflow_variables
) -> None:
    from sublessor_airflow.operators.broker_phone_sync import BrokerPhoneSyncOperator

    with RefusingPort() as port:
        airflow_connections(
            "anjuke_db",
            {
                "conn_type": "mysql",
                "host": "127.0.0.1",
                "port": port,
                "login": "root",
                "schema": "anjuke",
            },
        )
        airflow_connections("user_prop_db", user_prop_target.airflow_connection())
        with pytest.raises(ConnectionError) as failure:
            BrokerPhoneSyncOperator(task_id="sync_broker_phones").execute(
                {"data_interval_start": T0, "data_interval_end": T0 + timedelta(minutes=5)}
            )
        assert "'anjuke_db'" in str(failure.value)
        assert f"127.0.0.1:{port}" in str(failure.value)


def test_source_lost_mid_run_names_the_source(source, target, anjuke_target) -> None:
    from sublessor_billing.db.connect import connect

    put_brokers(source, [(1, "13800000001", "2026-03-01 10:01:00")])
    with source.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (connection_id,) = cur.fetchone()
    admin = connect(anjuke_target)
    with admin.cursor() as cur:
        cur.execute(f"KILL {int(connection_id)}")
    admin.close()
    with pytest.raises(
        ConnectionError, match=r"Lost the source anjuke_db \(10\.0\.0\.9:3306/anjuke\)"
    ):
        sync_interval(
            source,
            target,
            start=T0,
            end=T0 + timedelta(minutes=5),
            overlap_seconds=900,
            source_name="anjuke_db (10.0.0.9:3306/anjuke)",
        )


def test_a_second_sync_waits_for_the_first(source, target, user_prop_target, monkeypatch) -> None:
    from sublessor_billing.broker_sync import lock
    from sublessor_billing.db.connect import connect

    put_brokers(source, [(1, "13800000001", "2026-03-01 10:01:00")])
    monkeypatch.setattr(lock, "LOCK_TIMEOUT_S", 1)
    database = user_prop_target.database
    holder = connect(user_prop_target)
    with holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", (f"broker_phone_sync.{database}"[:64],))
        assert cur.fetchone()[0] == 1
    with pytest.raises(RuntimeError, match="Another broker_phone_sync run has held lock"):
        full_resync(source, target)
    assert target_phones(target) == set()
    holder.close()  # the server frees the lock with the session
    full_resync(source, target)
    assert target_phones(target) == source_phones(source)
