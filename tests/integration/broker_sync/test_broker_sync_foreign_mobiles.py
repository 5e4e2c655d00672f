"""Foreign broker mobiles are synced and their calls are judged broker calls (real MariaDB)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from broker_sync_db import T0, put_brokers, source_phones, target_phones

from sublessor_billing.broker_sync import MalformedMobile, full_resync, sync_interval
from sublessor_billing.calls.judge import judge_pending
from sublessor_billing.calls.message import Call, parse_message
from sublessor_billing.calls.store import insert_calls

pytestmark = pytest.mark.integration

RECEIVED = datetime(2026, 3, 1, 11, 0)  # intake time (Asia/Shanghai, naive), after every call


def log_calls(target, callers: dict[str, str]) -> None:
    """Log one connected, long call per (call_id, caller) as the 400 platform sends it."""
    calls = [
        parse_message(
            json.dumps(
                {
                    "call_id": call_id,
                    "sublessor_id": 10086,
                    "caller": caller,
                    "called": "4008123456",
                    "status": 1,
                    "start_time": f"2026-03-01 10:{15 + n:02d}:00",
                    "duration": 95,
                }
            ).encode(),
            received_at=RECEIVED,
        )
        for n, (call_id, caller) in enumerate(callers.items())
    ]
    assert all(isinstance(call, Call) for call in calls), calls
    with target.cursor() as cur:
        insert_calls(cur, calls)
    target.commit()


def filter_rules(target) -> dict[str, int]:
    with target.cursor() as cur:
        cur.execute("SELECT call_id, filter_rule FROM sublessor_call_log_201409")
        rows = dict(cur.fetchall())
    target.rollback()
    return rows


def test_a_foreign_broker_is_synced_and_their_calls_are_broker_calls(source, target) -> None:
    put_brokers(
        source,
        [
            (1, "+852 9123 4567", "2025-06-01 08:00:00"),  # Hong Kong mobile
            (2, "+44 7911 123456", "2025-06-01 08:00:00"),  # UK mobile
            (3, "13800000003", "2025-06-01 08:00:00"),
        ],
    )
    report = full_resync(source, target)  # the daily full resync no longer fails on them
    assert (report.added, report.malformed) == (3, 0)
    assert target_phones(target) == source_phones(source)
    assert (1, "85291234567") in target_phones(target)

    log_calls(
        target,
        {
            "hk-plus": "+852 9123 4567",
            "hk-plain": "852-9123-4567",
            "uk-plain": "44 7911 123 456",
            "hk-other": "+852 9123 4568",  # an ordinary caller next to the broker's number
            "cn": "+86 138 0000 0003",
        },
    )
    judge_pending(target, short_threshold=8, repeat_window=86400)
    assert filter_rules(target) == {
        "hk-plus": 5,
        "hk-plain": 5,
        "uk-plain": 5,
        "hk-other": 1,
        "cn": 5,
    }


def test_an_interval_syncs_a_foreign_mobile_and_reports_only_rows_without_digits(
    source, target
) -> None:
    with target.cursor() as cur:
        cur.execute(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime)"
            " VALUES (2, '13800000002', '2026-01-01 00:00:00')"
        )
    target.commit()
    put_brokers(
        source,
        [
            (1, "00852 9123 4567", "2026-03-01 10:01:00"),
            (2, "n/a", "2026-03-01 10:01:00"),  # not a number: reported, the old row kept
            (3, "12345", "2026-03-01 10:01:00"),  # short, but digits: synced as it is
        ],
    )
    with pytest.raises(MalformedMobile) as failure:
        sync_interval(source, target, start=T0, end=T0 + timedelta(minutes=5), overlap_seconds=900)
    assert failure.value.broker_ids == [2]
    assert "no digits" in str(failure.value)
    # Synced as the contract normalizes it: a foreign 00 is kept (docs: "Foreign numbers").
    assert target_phones(target) == {(1, "0085291234567"), (2, "13800000002"), (3, "12345")}


def test_implausible_numbers_are_synced_counted_and_logged_masked(source, target, caplog) -> None:
    """Too short or too long for a phone number: still a broker's, but someone should look."""
    put_brokers(
        source,
        [
            (1, "1234", "2025-06-01 08:00:00"),  # 4 digits
            (2, "12345", "2025-06-01 08:00:00"),  # 5: plausible
            (3, "\u2152" * 7, "2025-06-01 08:00:00"),  # NFKC: 21 digits
            (4, "13800000004", "2025-06-01 08:00:00"),
            (5, "9" * 20, "2025-06-01 08:00:00"),  # 20: plausible
        ],
    )
    with caplog.at_level("WARNING"):
        report = full_resync(source, target)
    assert (report.added, report.malformed, report.implausible) == (5, 0, 2)
    assert target_phones(target) == source_phones(source)
    named = {row["broker_id"]: row for row in report.as_dict()["implausible_rows"]}
    assert set(named) == {1, 3}
    assert named[1]["masked"] == "****"  # a short number is hidden whole
    assert named[3]["masked"] == "*" * 17 + "0110"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "BrokerId 1 " in logged and "BrokerId 3 " in logged
    assert "1234" not in logged and "110" * 7 not in logged

    again = full_resync(source, target)  # reported by every run that reads them
    assert (again.unchanged, again.implausible) == (5, 2)


def test_the_longest_numbers_a_user_mobile_can_give_are_synced(source, target) -> None:
    """20 characters that NFKC widens into 3 digits each: 60 digits, stored and counted."""
    put_brokers(
        source,
        [(1, "\u2152" * 20, "2025-06-01 08:00:00"), (2, "\u2152" * 11, "2025-06-01 08:00:00")],
    )
    report = full_resync(source, target)
    assert (report.added, report.malformed, report.implausible) == (2, 0, 2)
    assert target_phones(target) == {(1, "110" * 20), (2, "110" * 11)}
