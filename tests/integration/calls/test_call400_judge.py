"""Judging against the real database: rule edges, late arrivals, brokers, the invariant, the lock."""

from __future__ import annotations

import random

import pytest
from support.calls import call_body
from support.judging import DAY, RECEIVED, at, judge, log_calls, rules

from sublessor_billing.calls.judge import JudgeLockTimeout
from sublessor_billing.calls.message import parse_message
from sublessor_billing.calls.store import insert_calls

pytestmark = pytest.mark.integration


def test_rule_order_and_duration_edges(user_prop_conn) -> None:
    log_calls(
        user_prop_conn,
        [
            call_body("d8", duration=8, caller="13900000008"),
            call_body("d9", duration=9, caller="13900000009"),
            call_body("s0", status=0, duration=3, caller="13900000010"),
            call_body("s2", status=2, duration=300, caller="13900000011"),
        ],
    )
    counts = judge(user_prop_conn)
    assert rules(user_prop_conn) == {"d8": 3, "d9": 1, "s0": 2, "s2": 2}
    assert counts["judged"] == 4 and counts["valid"] == 1


@pytest.mark.parametrize(
    ("gap", "expected"), [(DAY - 1, 4), (DAY, 1), (-(DAY - 1), 4), (-DAY, 1), (0, 4)]
)
@pytest.mark.parametrize("late", [False, True])
def test_repeat_window_edges_in_either_order_and_arrival(
    user_prop_conn, gap, expected, late
) -> None:
    first, second = (
        call_body("first", start_time=at(DAY)),
        call_body("second", start_time=at(DAY + gap)),
    )
    if late:
        # "first" is judged valid before "second" even arrives.
        log_calls(user_prop_conn, [first])
        judge(user_prop_conn)
        log_calls(user_prop_conn, [second])
    else:
        log_calls(user_prop_conn, [second, first])
    judge(user_prop_conn)
    decided = rules(user_prop_conn)
    if late or gap > 0:
        assert decided == {"first": 1, "second": expected}
    else:
        # Both arrived together ("second" logged first): earlier start, then arrival, wins.
        assert decided == {"second": 1, "first": expected}


def test_same_caller_other_sublessor_is_no_repeat(user_prop_conn) -> None:
    log_calls(user_prop_conn, [call_body("a"), call_body("b", sublessor_id=10087)])
    judge(user_prop_conn)
    assert rules(user_prop_conn) == {"a": 1, "b": 1}


def test_broker_numbers_in_every_written_form(user_prop_conn) -> None:
    with user_prop_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) VALUES (%s, %s, NOW())",
            [(1, "13800138000"), (2, "02112345678"), (3, "01088888888")],
        )
    user_prop_conn.commit()
    forms = [
        "+86 138-0013-8000",
        "008613800138000",
        "013800138000",
        "13800138000",
        "86 138 0013 8000",
        "+86 21 1234 5678",
        "021-1234 5678",
        "+86 10 8888 8888",
        "(010) 8888-8888",
    ]
    log_calls(
        user_prop_conn,
        [call_body(f"b{i}", caller=f, sublessor_id=100 + i) for i, f in enumerate(forms)],
    )
    log_calls(
        user_prop_conn,
        [call_body("other", caller="13800138001"), call_body("near", caller="2112345678")],
    )
    judge(user_prop_conn)
    decided = rules(user_prop_conn)
    assert {decided[f"b{i}"] for i in range(len(forms))} == {5}
    assert (decided["other"], decided["near"]) == (1, 1)


def test_withheld_callers_stand_alone(user_prop_conn) -> None:
    with user_prop_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) VALUES (9, '', NOW())"
        )
    user_prop_conn.commit()
    log_calls(
        user_prop_conn,
        [call_body(f"w{i}", caller=c) for i, c in enumerate(["", "unknown", "+", "--"])],
    )
    judge(user_prop_conn)
    assert set(rules(user_prop_conn).values()) == {1}


def test_a_judged_call_is_never_rejudged(user_prop_conn) -> None:
    log_calls(user_prop_conn, [call_body("x", start_time=at(100))])
    judge(user_prop_conn)
    with user_prop_conn.cursor() as cur:
        cur.execute("UPDATE sublessor_call_log_201409 SET filter_rule = 3 WHERE call_id = 'x'")
    user_prop_conn.commit()
    log_calls(user_prop_conn, [call_body("y", start_time=at(0))])
    assert judge(user_prop_conn)["judged"] == 1
    assert rules(user_prop_conn) == {"x": 3, "y": 1}


def test_judges_are_serialized_by_the_named_lock(user_prop_target, user_prop_conn) -> None:
    from sublessor_billing.db.connect import connect

    log_calls(user_prop_conn, [call_body("locked")])
    other = connect(user_prop_target)
    try:
        with other.cursor() as cur:
            cur.execute("SELECT GET_LOCK(CONCAT('call400_judge.', DATABASE()), 0)")
            assert cur.fetchone()[0] == 1
            with pytest.raises(JudgeLockTimeout, match="call400_judge"):
                judge(user_prop_conn, lock_timeout=1)
            assert rules(user_prop_conn) == {"locked": 0}
            cur.execute("SELECT RELEASE_LOCK(CONCAT('call400_judge.', DATABASE()))")
    finally:
        other.close()
    judge(user_prop_conn)
    assert rules(user_prop_conn) == {"locked": 1}


def test_no_two_valid_calls_of_a_pair_closer_than_the_window(user_prop_conn) -> None:
    rng = random.Random(20260301)
    window = 3 * 3600
    callers = [f"1380000{n:04d}" for n in range(12)] + ["", "+86 138 0000 0001"]
    bodies = [
        call_body(
            f"r{i}",
            caller=rng.choice(callers),
            sublessor_id=rng.choice([1, 2, 3]),
            status=rng.choice([1, 1, 1, 0]),
            duration=rng.choice([5, 8, 9, 60, 300]),
            start_time=at(rng.randrange(0, 5 * DAY)),
        )
        for i in range(1500)
    ]
    # Arrivals in several waves with judging in between: later waves hold late arrivals.
    for start in range(0, len(bodies), 300):
        log_calls(user_prop_conn, bodies[start : start + 300])
        judge(user_prop_conn, repeat_window=window, batch_size=97)
    with user_prop_conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE filter_rule = 0")
        assert cur.fetchone()[0] == 0
        cur.execute(
            "SELECT COUNT(*) FROM sublessor_call_log_201409 a JOIN sublessor_call_log_201409 b "
            " ON a.caller_normalized = b.caller_normalized AND a.sublessor_id = b.sublessor_id "
            " AND a.id < b.id AND a.filter_rule = 1 AND b.filter_rule = 1 "
            "WHERE a.caller_normalized <> '' "
            " AND ABS(TIMESTAMPDIFF(SECOND, a.start_time, b.start_time)) < %s",
            (window,),
        )
        assert cur.fetchone()[0] == 0
        # Conversely every repeat has a valid call of its pair within the window.
        cur.execute(
            "SELECT COUNT(*) FROM sublessor_call_log_201409 r WHERE r.filter_rule = 4 AND NOT EXISTS ("
            " SELECT 1 FROM sublessor_call_log_201409 v WHERE v.filter_rule = 1"
            " AND v.caller_normalized = r.caller_normalized AND v.sublessor_id = r.sublessor_id"
            " AND ABS(TIMESTAMPDIFF(SECOND, v.start_time, r.start_time)) < %s)",
            (window,),
        )
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE filter_rule = 4")
        assert cur.fetchone()[0] > 50


class _RecordingCursor:
    def __init__(self, cursor, seen):
        self._cursor, self._seen = cursor, seen

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._cursor.close()

    def execute(self, sql, params=None):
        self._seen.append((sql, params))
        return self._cursor.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


class _RecordingConnection:
    def __init__(self, conn):
        self._conn, self.seen = conn, []

    def cursor(self):
        return _RecordingCursor(self._conn.cursor(), self.seen)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_call_set_back_to_unjudged_by_hand_is_judged_again(user_prop_conn) -> None:
    log_calls(user_prop_conn, [call_body("a", caller="13900000001", status=2)])
    judge(user_prop_conn)
    with user_prop_conn.cursor() as cur:  # an operator resets the rule, not judged_at
        cur.execute("UPDATE sublessor_call_log_201409 SET filter_rule = 0, status = 1")
    user_prop_conn.commit()
    assert judge(user_prop_conn)["valid"] == 1
    assert rules(user_prop_conn) == {"a": 1}
    with user_prop_conn.cursor() as cur:
        cur.execute("SELECT judged_at IS NOT NULL FROM sublessor_call_log_201409")
        assert cur.fetchone()[0] == 1


def test_judging_queries_use_their_indexes(user_prop_conn) -> None:
    with user_prop_conn.cursor() as cur:
        # 20,000 judged calls of 2,000 callers, so that a scan would show in the plan.
        cur.execute(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, caller_normalized,"
            " called, status, start_time, duration, filter_rule) "
            "SELECT CONCAT('old', seq), 1 + seq % 5, CONCAT('1390', LPAD(seq % 2000, 7, '0')),"
            " CONCAT('1390', LPAD(seq % 2000, 7, '0')), '400', 1,"
            " '2026-01-01' + INTERVAL seq * 97 SECOND, 60, 1 + seq % 5 FROM seq_1_to_20000"
        )
        cur.execute("ANALYZE TABLE sublessor_call_log_201409")
        cur.fetchall()
    user_prop_conn.commit()
    log_calls(
        user_prop_conn,
        [call_body(f"n{i}", caller=f"1390{i:07d}", start_time=at(i)) for i in range(50)],
    )
    recording = _RecordingConnection(user_prop_conn)
    judge(recording, batch_size=1000)
    plans = {}
    with user_prop_conn.cursor() as cur:
        for sql, params in recording.seen:
            if (
                sql.startswith("SELECT")
                and "sublessor_call_log_201409" in sql
                or "broker_phone" in sql
            ):
                cur.execute("EXPLAIN " + sql, params)
                columns = [d[0] for d in cur.description]
                plans[sql.split()[1].rstrip(",")] = [
                    dict(zip(columns, r, strict=True)) for r in cur.fetchall()
                ]
    candidates = plans["id"][0]  # ref on (filter_rule 0, judged_at NULL), in index order
    assert candidates["key"] == "idx_filter_rule" and candidates["type"] == "ref"
    assert "filesort" not in (candidates["Extra"] or "")
    history = next(row for row in plans["l.caller_normalized"] if row["table"] == "l")
    # ref on (caller, sublessor), the start_time range checked inside the index
    assert history["key"] == "idx_caller_sublessor" and history["type"] == "ref"
    assert "Using index condition" in history["Extra"] and int(history["rows"]) < 1000
    brokers = plans["DISTINCT"][0]
    assert brokers["key"] == "idx_phone"


def test_a_value_the_log_would_alter_fails_the_batch_instead(user_prop_conn) -> None:
    from dataclasses import replace

    good = parse_message(call_body("ok"), received_at=RECEIVED)
    too_long = replace(parse_message(call_body("long"), received_at=RECEIVED), called="4" * 65)
    with user_prop_conn.cursor() as cur:
        insert_calls(cur, [good])
        assert insert_calls(cur, [good]) == 0  # a duplicate alone is fine
        with pytest.raises(ValueError, match="altered values"):
            insert_calls(cur, [good, too_long])
    user_prop_conn.rollback()
