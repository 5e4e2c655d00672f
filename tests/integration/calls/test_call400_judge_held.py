"""No single call stops the judge: unjudgeable calls are held and reported, the others judged."""

from __future__ import annotations

import logging

import pytest
from support.calls import call_body
from support.judging import (
    DAY,
    at,
    fail_on,
    filler,
    hold_state,
    insert_raw,
    judge,
    log_calls,
    log_ids,
    rules,
)

from sublessor_billing.calls import verdicts
from sublessor_billing.calls.held import count_held, held_calls, release
from sublessor_billing.calls.singly import JudgeFault

pytestmark = pytest.mark.integration


def normal_calls() -> list[bytes]:
    return [
        call_body("first", start_time=at(0)),
        call_body("repeat", start_time=at(600)),  # same pair 10 minutes later
        call_body("next-day", start_time=at(DAY)),
        call_body("other", caller="13900000001", start_time=at(300)),
        call_body("unanswered", caller="13900000002", status=0),
    ]


EXPECTED = {"first": 1, "repeat": 4, "next-day": 1, "other": 1, "unanswered": 2}


def test_rows_intake_would_refuse_are_held_and_the_other_calls_judged(
    user_prop_conn, caplog
) -> None:
    """The 9999 start_time used to overflow start_time + window and fail every judge run."""
    log_calls(user_prop_conn, normal_calls()[:2])
    insert_raw(user_prop_conn, "y9999", "9999-12-31 12:00:00", caller="13800138000")
    insert_raw(user_prop_conn, "zero", "0000-00-00 00:00:00")
    insert_raw(user_prop_conn, "y1999", "1999-12-31 23:59:59")
    insert_raw(user_prop_conn, "max", "9999-12-31 23:59:59")
    log_calls(user_prop_conn, normal_calls()[2:])
    caplog.set_level(logging.WARNING)

    counts = judge(user_prop_conn, batch_size=3)

    decided = rules(user_prop_conn)
    assert {call_id: decided[call_id] for call_id in EXPECTED} == EXPECTED
    held = hold_state(user_prop_conn)
    assert set(held) == {"y9999", "zero", "y1999", "max"}
    assert all(rule == 0 and stamped for rule, stamped, _ in held.values())
    assert "more than 2 days after the call was logged" in held["y9999"][2]
    assert "not a readable date" in held["zero"][2]
    assert "before 2000-01-01" in held["y1999"][2]
    assert counts["held"] == 4 and counts["held_total"] == 4 and counts["judged"] == 5
    reported = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("'y9999'" in m and "release" in m and "13800138000" not in m for m in reported)
    assert len(reported) == 4

    # Held calls stay out of every later pass and of the hand-reset reopening, and
    # every pass names the oldest of them again (caller masked).
    log_calls(user_prop_conn, [call_body("later", caller="13900000003", start_time=at(5))])
    caplog.clear()
    again = judge(user_prop_conn)
    assert again["held"] == 0 and again["held_total"] == 4 and again["valid"] == 1
    assert hold_state(user_prop_conn) == held
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("4 calls are held")
    assert "call_id 'y9999'" in warning and "caller *******8000" in warning
    assert "13800138000" not in warning


def test_a_held_call_is_judged_once_fixed_and_released(user_prop_conn) -> None:
    log_calls(user_prop_conn, [call_body("first", start_time=at(0))])
    insert_raw(user_prop_conn, "typo", "9026-03-01 10:05:00", caller="13800138000")
    judge(user_prop_conn)
    with user_prop_conn.cursor() as cur:
        (listed,) = held_calls(cur)
        assert listed["call_id"] == "typo" and listed["caller"].endswith("8000")
        assert "13800138000" not in listed["caller"]
    user_prop_conn.rollback()
    with user_prop_conn.cursor() as cur:
        cur.execute(
            "UPDATE sublessor_call_log_201409 SET start_time = %s WHERE call_id = 'typo'",
            (at(300),),
        )
        assert release(cur, listed["id"]) is True
        assert release(cur, listed["id"]) is False  # no longer held
    user_prop_conn.commit()
    counts = judge(user_prop_conn)
    assert counts["repeat"] == 1 and counts["held_total"] == 0
    assert rules(user_prop_conn) == {"first": 1, "typo": 4}


@pytest.mark.parametrize("window", [10**12, 2**62])
def test_a_repeat_window_beyond_the_calendar_is_clamped(user_prop_conn, window) -> None:
    log_calls(
        user_prop_conn,
        [
            call_body("a", start_time="2001-01-01 00:00:00"),
            call_body("b", start_time=at(0)),
            call_body("c", caller="13900000001", start_time=at(0)),
        ],
    )
    insert_raw(user_prop_conn, "edge", "2000-01-01 00:00:00", caller="13900000009")
    counts = judge(user_prop_conn, repeat_window=window)
    assert rules(user_prop_conn) == {"a": 1, "b": 4, "c": 1, "edge": 1}
    assert counts["held"] == 0


def test_a_call_the_judge_fails_on_is_held_and_the_batch_judged_around_it(
    user_prop_conn, monkeypatch
) -> None:
    """One call of a batch fails on a value: it alone is held, the batch judged in start order.

    "late" is logged before "early" (a lower id, a later start): judging one by one
    walks by start_time, so "early" is the valid one, as in the batch.
    """
    log_calls(user_prop_conn, normal_calls())
    log_calls(
        user_prop_conn,
        [
            call_body("late", caller="13900000005", start_time=at(600)),
            call_body("early", caller="13900000005", start_time=at(0)),
            call_body("poison", caller="13900000004", start_time=at(1)),
        ],
    )
    log_calls(user_prop_conn, filler(100))
    fail_on(monkeypatch, set(log_ids(user_prop_conn, "poison")))
    counts = judge(user_prop_conn, batch_size=200)
    decided = rules(user_prop_conn)
    assert {call_id: decided[call_id] for call_id in EXPECTED} == EXPECTED
    assert (decided["early"], decided["late"]) == (1, 4)
    held = hold_state(user_prop_conn)
    assert list(held) == ["poison"]
    assert (
        held["poison"][2] == "the judge failed on this call: OverflowError: date value out of range"
    )
    assert counts["held"] == 1 and counts["judged"] == 107


def test_a_fault_on_every_call_is_raised_not_held(user_prop_conn, monkeypatch) -> None:
    log_calls(user_prop_conn, normal_calls())

    def broken(*args, **kwargs):
        raise TypeError("a bug in the judge")

    monkeypatch.setattr(verdicts, "judge_calls", broken)
    with pytest.raises(JudgeFault, match="5 of the 5 calls"):
        judge(user_prop_conn)
    with user_prop_conn.cursor() as cur:
        assert count_held(cur) == 0
        cur.execute("SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE filter_rule <> 0")
        assert cur.fetchone()[0] == 0
    user_prop_conn.rollback()
    monkeypatch.undo()
    assert judge(user_prop_conn)["judged"] == 5


class PushedXComs:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_the_judge_task_fails_once_after_judging_the_rest(call400) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from sublessor_airflow.operators.intake import Call400JudgeOperator

    conn = call400.db()
    try:
        log_calls(conn, normal_calls())
        insert_raw(conn, "y9999", "9999-12-31 12:00:00")
        task = Call400JudgeOperator(task_id="judge")
        ti = PushedXComs()
        with pytest.raises(AirflowFailException, match="1 calls could not be judged"):
            task.execute({"ti": ti})
        assert ti.pushed["return_value"]["held_total"] == 1  # for alerting, though it failed
        decided = rules(conn)
        assert {call_id: decided[call_id] for call_id in EXPECTED} == EXPECTED
        assert decided["y9999"] == 0
        conn.rollback()
        result = task.execute({})  # the next run: nothing new held, the task succeeds
        assert result["held"] == 0 and result["held_total"] == 1
    finally:
        conn.close()


def test_the_operator_lists_and_releases_held_calls_from_the_command_line(
    user_prop_target, user_prop_conn, airflow_connections, capsys
) -> None:
    from sublessor_billing.calls.quarantine import main

    airflow_connections("user_prop_db", user_prop_target.airflow_connection())

    insert_raw(user_prop_conn, "y9999", "9999-12-31 12:00:00", caller="13800138000")
    judge(user_prop_conn)
    assert main(["held"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    log_id, call_id, *_rest, reason = line.split("\t")
    assert call_id == "y9999" and "13800138000" not in line and "more than 2 days" in reason
    assert main(["release", log_id]) == 0
    assert "released" in capsys.readouterr().out
    assert main(["release", log_id]) == 1
    assert "is not held" in capsys.readouterr().err
    assert judge(user_prop_conn)["held"] == 1  # released unfixed: held again
    with user_prop_conn.cursor() as cur:
        cur.execute("UPDATE sublessor_call_log_201409 SET start_time = %s", (at(0),))
    user_prop_conn.commit()
    assert main(["release", log_id]) == 0
    assert judge(user_prop_conn)["valid"] == 1


def test_held_says_when_more_calls_are_held_and_bulk_release_needs_yes(
    user_prop_target, user_prop_conn, airflow_connections, capsys
) -> None:
    from sublessor_billing.calls.quarantine import main

    airflow_connections("user_prop_db", user_prop_target.airflow_connection())

    insert_raw(user_prop_conn, "y9999", "9999-12-31 12:00:00")
    insert_raw(user_prop_conn, "y1999", "1999-12-31 23:59:59")
    insert_raw(user_prop_conn, "zero", "0000-00-00 00:00:00")
    judge(user_prop_conn)
    assert main(["held", "--limit", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    assert "3 calls are held; the oldest 1 are shown (--limit)" in err

    assert main(["release", "--all"]) == 1  # no --yes: says, changes nothing
    assert "3 held calls would be released" in capsys.readouterr().err
    assert main(["release", "--reason-prefix", "start_time is not"]) == 1
    assert "1 held calls whose reason starts 'start_time is not'" in capsys.readouterr().err
    with user_prop_conn.cursor() as cur:
        assert count_held(cur) == 3
    user_prop_conn.rollback()

    assert main(["release", "--reason-prefix", "start_time is not", "--yes"]) == 0
    assert capsys.readouterr().out.startswith("1 held calls whose reason starts")
    assert set(hold_state(user_prop_conn)) == {"y9999", "y1999"}
    assert main(["release", "--all", "--yes"]) == 0
    assert capsys.readouterr().out.startswith("2 held calls released")
    assert hold_state(user_prop_conn) == {}


def test_a_held_call_gets_no_order(user_prop_conn) -> None:
    from sublessor_billing.payments.allocation import allocate_orders

    log_calls(user_prop_conn, [call_body("first", start_time=at(0))])
    insert_raw(user_prop_conn, "y9999", "9999-12-31 12:00:00", caller="13900000001")
    judge(user_prop_conn)
    with user_prop_conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE held_reason IS NOT NULL")
        assert cur.fetchone()[0] == 1
    user_prop_conn.rollback()
    assert allocate_orders(user_prop_conn, 4000).allocated == 1
    with user_prop_conn.cursor() as cur:
        cur.execute("SELECT call_id FROM sublessor_call_payment_log_201409")
        assert cur.fetchall() == (("first",),)
    user_prop_conn.rollback()


def test_a_held_call_id_that_is_not_utf8_is_shown_escaped_and_judging_goes_on(
    user_prop_conn, caplog
) -> None:
    """On MySQL 5.7 call_id is VARBINARY: any bytes. Showing them must not stop the judge."""
    with user_prop_conn.cursor() as cur:
        cur.execute("ALTER TABLE sublessor_call_log_201409 MODIFY call_id VARBINARY(256) NOT NULL")
    insert_raw(user_prop_conn, b"bad\xff", "9999-12-31 12:00:00")
    log_calls(user_prop_conn, [call_body("first", start_time=at(0))])
    caplog.set_level(logging.WARNING)
    counts = judge(user_prop_conn)
    assert (counts["held"], counts["valid"]) == (1, 1)
    with user_prop_conn.cursor() as cur:
        (listed,) = held_calls(cur)
    user_prop_conn.rollback()
    assert listed["call_id"] == "bad\\xff"
    assert any("call_id 'bad\\\\xff'" in r.getMessage() for r in caplog.records)
