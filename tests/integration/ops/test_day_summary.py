"""The day's figures: calendar-day boundaries, charges of the day's calls, index-backed plans."""

from __future__ import annotations

from datetime import date

import pytest

from sublessor_billing.ops.summary import SUMMARY_QUERIES, Day, day_summary

pytestmark = pytest.mark.integration
DAY = date(2026, 3, 1)


def add_calls(conn, calls: list[tuple[str, str, int]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
            " start_time, duration, filter_rule) VALUES (%s, 1, '139', '400', 1, %s, 60, %s)",
            calls,
        )
    conn.commit()


def test_a_day_is_its_calendar_day_and_charges_follow_their_calls(user_prop_conn) -> None:
    add_calls(
        user_prop_conn,
        [
            ("before", "2026-02-28 23:59:59", 1),
            ("first", "2026-03-01 00:00:00", 1),
            ("repeat", "2026-03-01 13:30:00", 4),
            ("last", "2026-03-01 23:59:59", 1),
            ("after", "2026-03-02 00:00:00", 1),
        ],
    )
    with user_prop_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject,"
            " status) VALUES (%s, 1, %s, 's', %s)",
            [
                ("before", 4000, "success"),
                ("first", 4000, "success"),
                ("last", 3500, "insufficient"),
                ("after", 4000, "pending"),
            ],
        )
    user_prop_conn.commit()
    summary = day_summary(user_prop_conn, DAY)
    assert summary["calls"]["total"] == 3 and summary["calls"]["valid"] == 2
    assert summary["calls"]["by_filter_rule"]["4"] == 1
    assert summary["charges"]["by_outcome"]["success"] == {"count": 1, "amount_fen": 4000}
    assert summary["charges"]["by_outcome"]["insufficient"] == {"count": 1, "amount_fen": 3500}
    assert summary["charges"]["by_outcome"]["pending"]["count"] == 0
    assert summary["charges"]["revenue_fen"] == 4000
    hours = {h["hour"]: (h["calls"], h["charged"]) for h in summary["hourly"] if h["calls"]}
    assert hours == {0: (1, 1), 13: (1, 0), 23: (1, 0)}
    assert summary["pending"]["count"] == 1  # pending is shown whatever the day


def test_the_day_queries_read_a_range_of_the_start_time_index(user_prop_conn) -> None:
    add_calls(
        user_prop_conn, [(f"c{i}", f"2026-03-{1 + i % 28:02d} 10:00:00", 1) for i in range(300)]
    )
    plans = {}
    with user_prop_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject)"
            " SELECT call_id, 1, 4000, 's' FROM sublessor_call_log_201409"
        )
        cur.execute("ANALYZE TABLE sublessor_call_log_201409, sublessor_call_payment_log_201409")
        cur.fetchall()
        for name, sql in SUMMARY_QUERIES.items():
            cur.execute("EXPLAIN " + sql, Day(DAY).window)
            columns = [d[0] for d in cur.description]
            plans[name] = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    user_prop_conn.rollback()
    for name, plan in plans.items():
        log = plan[0]
        assert (log["table"], log["type"], log["key"]) == (
            "c" if name == "charges_by_hour" else "sublessor_call_log_201409",
            "range",
            "idx_start_time",
        ), plan
    [_, payment] = plans["charges_by_hour"]
    assert (payment["type"], payment["key"]) == ("eq_ref", "uk_call_id"), plans
