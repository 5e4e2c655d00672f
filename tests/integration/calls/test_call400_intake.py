"""Intake against the real broker and database: duplicates, quarantine, cap, bad input mixed in."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.calls import call_body, drain_queued

pytestmark = pytest.mark.integration


def run_intake(call400, hook, **options):
    """Drain what the test queued (at most ``max_messages``): its count ends the drain."""
    conn = call400.db()
    try:
        return drain_queued(call400, hook.channel(), conn, **options)
    finally:
        conn.close()
        hook.close()


def test_valid_calls_logged_normalized_and_acked(call400, amqp_hook) -> None:
    call400.publish([call_body(f"c{i}", caller=f"+86 139-{i:04d}-0000") for i in range(25)])
    result = run_intake(call400, amqp_hook, max_messages=1000, batch_size=10)
    assert result.as_dict() == {"received": 25, "logged": 25, "duplicates": 0, "quarantined": 0}
    rows = call400.query(
        "SELECT caller_normalized, filter_rule FROM sublessor_call_log_201409 WHERE call_id = 'c7'"
    )
    assert rows == [("13900070000", 0)]
    assert call400.ready() == 0


def test_rules_2_and_3_are_applied_on_arrival_the_rest_left_to_the_judge(
    call400, amqp_hook
) -> None:
    """Rules 2 and 3 need only the call itself: judging them on arrival cannot depend on order."""
    from sublessor_billing.calls.judge import judge_pending

    call400.publish(
        [
            call_body("late-valid", start_time="2026-03-01 11:00:00"),
            call_body("unanswered", status=0, duration=300),
            call_body("short", duration=8),
            call_body("nine", duration=9, start_time="2026-03-03 10:00:00"),
            call_body("early-valid", start_time="2026-03-01 10:00:00"),
        ]
    )
    run_intake(call400, amqp_hook, max_messages=100, batch_size=2, short_threshold=8)
    arrived = dict(
        call400.query(
            "SELECT call_id, filter_rule FROM sublessor_call_log_201409"
            " WHERE judged_at IS NOT NULL OR filter_rule <> 0"
        )
    )
    assert arrived == {"unanswered": 2, "short": 3}
    conn = call400.db()
    judge_pending(conn, short_threshold=8, repeat_window=86400)
    conn.close()
    # The whole run is judged in start_time order: the 10:00 call is the valid one,
    # although the 11:00 call arrived (and was logged) first.
    assert dict(call400.query("SELECT call_id, filter_rule FROM sublessor_call_log_201409")) == {
        "late-valid": 4,
        "unanswered": 2,
        "short": 3,
        "nine": 1,
        "early-valid": 1,
    }


def test_duplicates_absorbed_first_copy_stands_differing_copy_warned(
    call400, amqp_hook, caplog
) -> None:
    first = call_body("dup-1", duration=95)
    differing = call_body("dup-1", duration=300)
    call400.publish([first, first])
    run_intake(call400, amqp_hook, max_messages=100)
    caplog.set_level(logging.WARNING)
    call400.publish([first, differing, differing])
    result = run_intake(call400, amqp_hook, max_messages=100)
    assert result.as_dict() == {"received": 3, "logged": 0, "duplicates": 3, "quarantined": 0}
    assert call400.query("SELECT duration FROM sublessor_call_log_201409") == [(95,)]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if "dup-1" in r.getMessage() and "differs" in r.getMessage()
    ]
    assert warnings
    assert all("13800138000" not in w and "8000" in w for w in warnings)


def test_invalid_message_quarantined_once_with_seen_count(call400, amqp_hook) -> None:
    bad = call_body("bad-1", duration=-5)
    call400.publish([bad, call_body("ok-1"), bad, b"\x00not json"])
    result = run_intake(call400, amqp_hook, max_messages=100)
    assert result.as_dict() == {"received": 4, "logged": 1, "duplicates": 0, "quarantined": 3}
    rows = call400.query(
        "SELECT raw_body, reason, call_id, seen_count, status, routing_key "
        "FROM call400_quarantine ORDER BY id"
    )
    assert [(bytes(r[0]), r[2], r[3], r[4]) for r in rows] == [
        (bad, "bad-1", 2, "quarantined"),
        (b"\x00not json", None, 1, "quarantined"),
    ]
    assert "duration = -5" in rows[0][1]
    assert rows[0][5] == call400.names["routing_key"]


def test_start_times_out_of_bounds_of_the_intake_time_are_quarantined(call400, amqp_hook):
    """A 9999 start_time used to be logged and then fail every judge run."""
    from datetime import datetime

    intake_time = datetime(2026, 3, 1, 12, 0, 0)
    call400.publish(
        [
            call_body("y9999", start_time="9999-12-31 12:00:00"),
            call_body("ahead", start_time="2026-03-02 12:00:01"),
            call_body("y1999", start_time="1999-12-31 23:59:59"),
            call_body("day-ahead", start_time="2026-03-02 12:00:00"),
            call_body("y2000", start_time="2000-01-01 00:00:00"),
        ]
    )
    result = run_intake(call400, amqp_hook, max_messages=10, clock=lambda: intake_time)
    assert result.as_dict() == {"received": 5, "logged": 2, "duplicates": 0, "quarantined": 3}
    logged = {r[0] for r in call400.query("SELECT call_id FROM sublessor_call_log_201409")}
    assert logged == {"day-ahead", "y2000"}
    reasons = dict(call400.query("SELECT call_id, reason FROM call400_quarantine"))
    assert "more than one day after the intake time 2026-03-01 12:00:00" in reasons["y9999"]
    assert "more than one day after" in reasons["ahead"]
    assert "before 2000-01-01" in reasons["y1999"]
    assert call400.ready() == 0


def test_cap_leaves_the_rest_queued(call400, amqp_hook) -> None:
    call400.publish([call_body(f"cap{i}") for i in range(50)])
    result = run_intake(call400, amqp_hook, max_messages=30, batch_size=8)
    assert result.received == 30 and result.logged == 30
    assert call400.ready() == 20
    assert call400.query("SELECT COUNT(*) FROM sublessor_call_log_201409") == [(30,)]


BAD_VALUES = {
    "call_id": [None, "", "x" * 65, 7, ["a"]],
    "sublessor_id": [0, -1, 2**32, "10086", True, 1.5, None, {"id": 1}],
    "prop_id": [-1, 2**32, False, "1"],
    "caller": [None, 13800138000, "1" * 65, "\u2473" * 40],
    "called": [None, 400, "4" * 65],
    "ext": [1, "e" * 65],
    "status": [None, "1", True, 2**31, -(2**31) - 1, 1.0],
    "start_time": [
        None,
        "2026-02-29 10:00:00",
        "2026-03-01",
        "2026-03-01 10:15:02.5",
        "'; DROP TABLE x; --",
    ],
    "duration": [None, -1, 2**32, "95", 9.5, False],
    "call_type": ["CALLBACK", "", 0, "回拨"],
}
invalid_bodies = st.one_of(
    st.sampled_from(sorted(BAD_VALUES))
    .flatmap(lambda field: st.tuples(st.just(field), st.sampled_from(BAD_VALUES[field])))
    .map(lambda fv: ("field", fv)),
    st.binary(max_size=300).map(lambda b: ("raw", b"\xff" + b)),
    st.recursive(st.integers() | st.text(max_size=20) | st.none(), st.lists, max_leaves=6).map(
        lambda v: ("raw", json.dumps([v]).encode())
    ),
)
mixes = st.lists(st.one_of(st.just(("valid", None)), invalid_bodies), min_size=1, max_size=25)


# Examples share the test's database and queue: each gets call ids of its own, also when
# Hypothesis runs an example again, and the examples are the same on every run.
_example_numbers = itertools.count()


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(mixes)
def test_bad_messages_among_valid_ones_all_end_in_quarantine(call400, amqp_hook, mix) -> None:
    token = f"x{next(_example_numbers)}"
    bodies, valid_ids, invalid = [], [], []
    for i, (kind, value) in enumerate(mix):
        call_id = f"mix-{token}-{i}"
        if kind == "valid":
            bodies.append(call_body(call_id, start_time=f"2026-03-01 10:{i:02d}:00"))
            valid_ids.append(call_id)
        elif kind == "field":
            field, bad = value
            body = json.loads(call_body(call_id))
            body[field] = bad
            bodies.append(json.dumps(body).encode())
            invalid.append(bodies[-1])
        elif value.startswith(b"\xff"):
            bodies.append(value + token.encode())
            invalid.append(bodies[-1])
        else:  # a JSON array: still one, with the token in it
            bodies.append(json.dumps([token, *json.loads(value)]).encode())
            invalid.append(bodies[-1])
    call400.publish(bodies)
    result = run_intake(call400, amqp_hook, max_messages=1000, batch_size=7)
    assert result.received == len(bodies)
    assert result.logged == len(valid_ids)
    assert result.quarantined == len(invalid)
    logged = {r[0] for r in call400.query("SELECT call_id FROM sublessor_call_log_201409")}
    assert set(valid_ids) <= logged
    assert not ({f"mix-{token}-{i}" for i in range(len(mix))} - set(valid_ids)) & logged
    for body in invalid:
        rows = call400.query(
            "SELECT raw_body, reason FROM call400_quarantine WHERE body_sha256 = %s",
            (hashlib.sha256(body).hexdigest(),),
        )
        assert len(rows) == 1 and bytes(rows[0][0]) == body and rows[0][1]
    assert call400.ready() == 0


def test_call_ids_differing_by_trailing_spaces_are_two_calls_end_to_end(call400, amqp_hook):
    """'c1' and 'c1 ' are two calls: both logged, judged and given an order of their own."""
    from sublessor_billing.calls.judge import judge_pending
    from sublessor_billing.payments.allocation import allocate_orders

    call400.publish([call_body("c1", caller="13900000001"), call_body("C1", caller="13900000003")])
    run_intake(call400, amqp_hook, max_messages=10)
    call400.publish(
        [
            call_body("c1 ", caller="13900000002"),
            call_body("c1 ", caller="13900000002"),  # a redelivery: the only duplicate
            call_body(" c1", caller="13900000004"),
        ]
    )
    result = run_intake(call400, amqp_hook, max_messages=10)
    assert result.as_dict() == {"received": 3, "logged": 2, "duplicates": 1, "quarantined": 0}
    conn = call400.db()
    try:
        assert judge_pending(conn, short_threshold=8, repeat_window=86400)["valid"] == 4
        assert allocate_orders(conn, 4000).allocated == 4
    finally:
        conn.close()
    logged = call400.query(
        "SELECT call_id, caller, filter_rule FROM sublessor_call_log_201409 ORDER BY caller"
    )
    assert logged == [
        ("c1", "13900000001", 1),
        ("c1 ", "13900000002", 1),
        ("C1", "13900000003", 1),
        (" c1", "13900000004", 1),
    ]
    orders = call400.query("SELECT call_id FROM sublessor_call_payment_log_201409 ORDER BY id")
    assert sorted(r[0] for r in orders) == [" c1", "C1", "c1", "c1 "]
    assert call400.query("SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE call_id = 'c1'") == [
        (1,)
    ]
    assert call400.ready() == 0


def test_huge_invalid_bodies_are_kept_truncated_in_bounded_statements(call400, amqp_hook) -> None:
    from sublessor_billing.calls.intake import MAX_KEPT_BODY

    huge = b"\x00'\\" * (MAX_KEPT_BODY + 1000)  # escapes to twice its size
    mid = [bytes([65 + i]) * (MAX_KEPT_BODY // 2 + 1) for i in range(4)]
    call400.publish([huge, *mid, call_body("after-huge")])
    result = run_intake(call400, amqp_hook, max_messages=10)
    assert result.as_dict() == {"received": 6, "logged": 1, "duplicates": 0, "quarantined": 5}
    row = call400.query(
        "SELECT LENGTH(raw_body), reason FROM call400_quarantine WHERE body_sha256 = %s",
        (hashlib.sha256(huge).hexdigest(),),
    )
    assert row[0][0] == MAX_KEPT_BODY and "kept truncated" in row[0][1]
    assert call400.query(
        "SELECT COUNT(*) FROM call400_quarantine WHERE LENGTH(raw_body) > 500000"
    ) == [(5,)]


def test_a_call_the_log_refuses_is_quarantined_and_the_rest_logged(call400, amqp_hook, monkeypatch):
    """Fault injection: a validation gap lets an over-long value through to the INSERT."""
    from dataclasses import replace

    import sublessor_billing.calls.intake as intake
    from sublessor_billing.calls.message import parse_message

    def leaky(body, *, received_at):
        parsed = parse_message(body, received_at=received_at)
        return replace(parsed, called="4" * 65) if b"gap" in body else parsed

    monkeypatch.setattr(intake, "parse_message", leaky)
    gap = call_body("gap-1")
    call400.publish([call_body("ok-a"), gap, call_body("ok-b"), b"[]"])
    result = run_intake(call400, amqp_hook, max_messages=10)
    assert result.as_dict() == {"received": 4, "logged": 2, "duplicates": 0, "quarantined": 2}
    assert sorted(r[0] for r in call400.query("SELECT call_id FROM sublessor_call_log_201409")) == [
        "ok-a",
        "ok-b",
    ]
    rows = call400.query(
        "SELECT reason, call_id FROM call400_quarantine WHERE raw_body = %s", (gap,)
    )
    assert rows and rows[0][1] == "gap-1" and "refused" in rows[0][0]
    assert call400.ready() == 0


def test_a_batch_larger_than_one_statement_is_split_and_stored_verbatim(
    call400, amqp_hook, caplog
) -> None:
    from sublessor_billing.calls import store

    # ~330 bytes per row once escaped: 4,000 rows need two statements of at most 1 MiB.
    tricky = "'\\\"\x00\n\r\x1a🙂" * 6
    bodies = [call_body(f"big-{i}-{tricky}"[:64], ext=tricky[:64]) for i in range(4000)]
    bodies.append(call_body("big-0-" + tricky[:58], duration=7))  # a differing duplicate
    call400.publish(bodies)
    caplog.set_level(logging.WARNING)
    executed: list[int] = []
    real_execute = type(call400.db().cursor()).execute

    def spy(cur, query, args=None):
        if isinstance(query, bytes) and query.startswith(b"INSERT IGNORE"):
            executed.append(len(query))
        return real_execute(cur, query, args)

    import MySQLdb.cursors

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(MySQLdb.cursors.Cursor, "execute", spy)
    try:
        result = run_intake(call400, amqp_hook, max_messages=5000, batch_size=5000)
    finally:
        monkeypatch.undo()
    assert result.as_dict() == {"received": 4001, "logged": 4000, "duplicates": 1, "quarantined": 0}
    assert len(executed) >= 2 and max(executed) <= store._STATEMENT_BYTES + 1000
    stored = call400.query(
        "SELECT call_id, ext FROM sublessor_call_log_201409 WHERE call_id LIKE 'big-17-%%'"
    )
    assert stored == [(f"big-17-{tricky}"[:64], tricky[:64])]
    assert any("differs" in r.getMessage() for r in caplog.records)
