"""The day's figures: calendar-day boundaries, orders by the day they were made, index-backed plans."""

from __future__ import annotations

from datetime import date

import pytest

from sublessor_billing.ops.clock import Day
from sublessor_billing.ops.summary import SUMMARY_QUERIES, day_summary, hourly_params

pytestmark = pytest.mark.integration
DAY = date(2026, 3, 1)


def add_calls(conn, calls: list[tuple[str, str, int]]) -> None:
    """Calls received at the given Asia/Shanghai times (written on the server's clock)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
            " start_time, duration, filter_rule, received_at) VALUES (%s, 1, '139', '400', 1,"
            " %s - INTERVAL 70 SECOND, 60, %s, CONVERT_TZ(%s, '+08:00', @@session.time_zone))",
            [(call_id, at, rule, at) for call_id, at, rule in calls],
        )
    conn.commit()


def test_calls_and_orders_keep_to_the_day_they_were_received_and_made(
    user_prop_conn,
) -> None:
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
    # The day is Asia/Shanghai's whatever the server's zone: each created_at is
    # written as a Shanghai time converted to the server's clock.
    with user_prop_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject,"
            " status, created_at) VALUES (%s, 1, %s, 's', %s,"
            " CONVERT_TZ(%s, '+08:00', @@session.time_zone))",
            [
                ("before", 4000, "success", "2026-03-01 00:00:30"),  # call received the day before
                ("first", 4000, "success", "2026-03-01 00:01:00"),
                ("last", 3500, "insufficient", "2026-03-02 00:00:10"),  # made the next day
                ("after", 4000, "pending", "2026-03-02 00:01:00"),
            ],
        )
    user_prop_conn.commit()
    summary = day_summary(user_prop_conn, DAY)
    assert summary["calls"]["total"] == 3 and summary["calls"]["valid"] == 2
    assert summary["calls"]["by_filter_rule"]["4"] == 1
    assert summary["charges"]["by_outcome"]["success"] == {"count": 2, "amount_fen": 8000}
    assert summary["charges"]["by_outcome"]["insufficient"] == {"count": 0, "amount_fen": 0}
    assert summary["charges"]["revenue_fen"] == 8000
    hours = {
        h["hour"]: (h["calls"], h["charged"])
        for h in summary["hourly"]
        if h["calls"] or h["charged"]
    }
    assert hours == {0: (1, 2), 13: (1, 0), 23: (1, 0)}
    assert summary["pending"]["count"] == 1  # pending is shown whatever the day
    next_day = day_summary(user_prop_conn, date(2026, 3, 2))["charges"]["by_outcome"]
    assert (next_day["insufficient"]["count"], next_day["pending"]["count"]) == (1, 1)


def test_the_day_queries_read_a_range_of_an_index_only(user_prop_conn) -> None:
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
            cur.execute("EXPLAIN " + sql, hourly_params(Day(DAY).on_database_clock(cur)))
            columns = [d[0] for d in cur.description]
            plans[name] = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    user_prop_conn.rollback()
    [calls] = plans["calls_by_hour"]
    assert (calls["type"], calls["key"]) == ("range", "idx_received"), plans
    assert "Using index" in calls["Extra"], plans  # filter_rule comes from the index
    [orders] = plans["charges_by_hour"]
    assert (orders["type"], orders["key"]) == ("range", "idx_created"), plans
    assert "Using index" in orders["Extra"], plans  # status and amount come from the index


def test_held_calls_are_not_counted_as_waiting_to_be_judged(user_prop_conn) -> None:
    add_calls(
        user_prop_conn,
        [
            ("waiting", "2026-03-01 09:00:00", 0),
            ("held", "2026-03-01 10:00:00", 0),
            ("held-before", "2026-02-27 10:00:00", 0),
        ],
    )
    with user_prop_conn.cursor() as cur:
        cur.execute(
            "UPDATE sublessor_call_log_201409 SET caller = '13800138000', judged_at = NOW(3),"
            " held_reason = 'start_time 2099-01-01 is too late', held_count = 1"
            " WHERE call_id IN ('held', 'held-before')"
        )
    user_prop_conn.commit()
    summary = day_summary(user_prop_conn, DAY)
    assert summary["calls"]["total"] == 2
    assert summary["calls"]["by_filter_rule"]["0"] == 1  # only the call still waiting
    assert summary["calls"]["held"] == 1
    held = summary["held_calls"]
    assert held["count"] == 2  # all days
    assert {c["call_id"] for c in held["calls"]} == {"held", "held-before"}
    assert {c["caller"] for c in held["calls"]} == {"*******8000"}


def test_pending_rows_below_the_order_id_range_are_held_back_not_pending(user_prop_conn) -> None:
    with user_prop_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount,"
            " subject, status, created_at) VALUES (%s, %s, 1, 4000, 's', 'pending',"
            " NOW() - INTERVAL %s MINUTE)",
            [
                (5, "by-hand", 90),  # the oldest row and the lowest id: never sent
                (820000000200, "newer-id-older-row", 40),
                (820000000100, "older-id-newer-row", 10),
            ],
        )
    user_prop_conn.commit()
    summary = day_summary(user_prop_conn, DAY)
    pending = summary["pending"]
    assert pending["count"] == 2
    assert pending["oldest_order_id"] == 820000000200
    assert 40 * 60 <= pending["oldest_age_seconds"] < 41 * 60
    assert [p["order_id"] for p in pending["oldest"]] == [820000000100, 820000000200]
    assert summary["held_back_orders"] == {"count": 1, "ids": [5]}


def test_offline_counts_only_sublessors_taken_offline_and_undelivered_of_all_days(
    user_prop_conn,
) -> None:
    with user_prop_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sublessor_offline_event (request_id, sublessor_id, trigger_order_id,"
            " reason, status, created_at) VALUES (%s, %s, %s, 'insufficient balance', %s,"
            " CONVERT_TZ(%s, '+08:00', @@session.time_zone))",
            [
                (f"r{n}", n, n, status, at)
                for n, status, at in [
                    (1, "done", "2026-03-01 10:00:00"),
                    (2, "pending", "2026-03-01 11:00:00"),
                    (3, "superseded", "2026-03-01 12:00:00"),  # took no one offline
                    (4, "pending", "2026-02-20 12:00:00"),  # an older day, still undelivered
                ]
            ],
        )
    user_prop_conn.commit()
    offline = day_summary(user_prop_conn, DAY)["offline"]
    assert offline["sublessors"] == 2
    assert (offline["undelivered"], offline["undelivered_all_days"]) == (1, 2)
