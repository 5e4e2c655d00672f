"""A fault of the judge stops it loudly; a call it failed on alone is held, then retried."""

from __future__ import annotations

import logging

import pytest
from support.calls import call_body
from support.judging import (
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
from sublessor_billing.calls.held import count_held
from sublessor_billing.calls.singly import JudgeFault

pytestmark = pytest.mark.integration


def assert_nothing_held_nor_judged(conn) -> None:
    with conn.cursor() as cur:
        assert count_held(cur) == 0
        cur.execute("SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE filter_rule <> 0")
        assert cur.fetchone()[0] == 0
    conn.rollback()


@pytest.mark.parametrize(
    ("failing", "batch", "fault"),
    [(1, 1, True), (1, 99, True), (1, 100, False), (10, 1000, False), (11, 1100, True)],
)
def test_more_than_ten_calls_or_one_percent_of_a_batch_failing_is_a_judge_fault(
    user_prop_conn, monkeypatch, failing, batch, fault
) -> None:
    """A regression that breaks many (not all) calls, or the only call, must not hold them."""
    log_calls(user_prop_conn, filler(batch))
    fail_on(monkeypatch, set(log_ids(user_prop_conn, "filler-%")[:failing]))
    if fault:
        with pytest.raises(JudgeFault, match=f"{failing}\\+? of the {batch} calls of a batch"):
            judge(user_prop_conn, batch_size=5000)
        assert_nothing_held_nor_judged(user_prop_conn)
    else:
        counts = judge(user_prop_conn, batch_size=5000)
        assert counts["held"] == failing and counts["valid"] == batch - failing


def test_a_fault_on_most_calls_of_a_batch_is_raised_not_held(user_prop_conn, monkeypatch) -> None:
    log_calls(user_prop_conn, filler(90))
    log_calls(user_prop_conn, [call_body(f"ok-{i}", caller=f"1370000{i:04d}") for i in range(10)])
    fail_on(monkeypatch, set(log_ids(user_prop_conn, "filler-%")))
    with pytest.raises(JudgeFault, match="11\\+ of the 100 calls"):
        judge(user_prop_conn, batch_size=5000)
    assert_nothing_held_nor_judged(user_prop_conn)


def age_hold(conn, call_id: str, minutes: int, held_count: int | None = None) -> None:
    """Move the call's last hold back in time (instead of waiting for the retry to be due)."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE sublessor_call_log_201409 SET judged_at = judged_at - INTERVAL %s MINUTE,"
            " held_count = COALESCE(%s, held_count) WHERE call_id = %s",
            (minutes, held_count, call_id),
        )
    conn.commit()


def held_count(conn, call_id: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT held_count FROM sublessor_call_log_201409 WHERE call_id = %s", (call_id,)
        )
        found = cur.fetchone()[0]
    conn.rollback()
    return found


def test_a_call_the_judge_failed_on_is_retried_until_it_is_judged(
    user_prop_conn, monkeypatch, caplog
) -> None:
    log_calls(user_prop_conn, filler(100))
    log_calls(user_prop_conn, [call_body("poison", caller="13900000004", start_time=at(1))])
    fail_on(monkeypatch, set(log_ids(user_prop_conn, "poison")))
    assert judge(user_prop_conn, batch_size=5000)["held"] == 1
    assert held_count(user_prop_conn, "poison") == 1

    again = judge(user_prop_conn)  # the first retry is due 5 minutes after the hold
    assert (again["held_retried"], again["held_total"]) == (0, 1)

    age_hold(user_prop_conn, "poison", 5)
    again = judge(user_prop_conn)  # due; the fault is still there: held again, not a new hold
    assert (again["held"], again["held_retried"], again["held_recovered"]) == (0, 1, 0)
    assert held_count(user_prop_conn, "poison") == 2
    assert judge(user_prop_conn)["held_retried"] == 0  # the next one is due 10 minutes later

    monkeypatch.undo()  # the fault is fixed (a deployment)
    age_hold(user_prop_conn, "poison", 10)
    caplog.set_level(logging.WARNING)
    caplog.clear()
    again = judge(user_prop_conn)
    assert (again["held_retried"], again["held_recovered"], again["held_total"]) == (1, 1, 0)
    assert again["valid"] == 1 and rules(user_prop_conn)["poison"] == 1
    assert hold_state(user_prop_conn) == {}
    assert held_count(user_prop_conn, "poison") == 2  # the record of what happened stays
    assert not [r for r in caplog.records if "calls are held" in r.getMessage()]


def test_retries_stop_after_eight_and_a_start_time_hold_is_never_retried(
    user_prop_conn, monkeypatch
) -> None:
    log_calls(user_prop_conn, filler(100))
    log_calls(user_prop_conn, [call_body("poison", caller="13900000004", start_time=at(1))])
    insert_raw(user_prop_conn, "y9999", "9999-12-31 12:00:00")
    fail_on(monkeypatch, set(log_ids(user_prop_conn, "poison")))
    judge(user_prop_conn, batch_size=5000)

    age_hold(user_prop_conn, "poison", 5 * 2**7 - 1, held_count=8)
    assert judge(user_prop_conn)["held_retried"] == 0  # the eighth retry: due after 640 minutes
    age_hold(user_prop_conn, "poison", 1)
    assert judge(user_prop_conn)["held_retried"] == 1
    assert held_count(user_prop_conn, "poison") == 9

    monkeypatch.undo()
    age_hold(user_prop_conn, "poison", 10**6)
    age_hold(user_prop_conn, "y9999", 10**6)
    again = judge(user_prop_conn)
    assert (again["held_retried"], again["held_total"]) == (0, 2)
    assert held_count(user_prop_conn, "y9999") == 1
    assert set(hold_state(user_prop_conn)) == {"poison", "y9999"}


def test_a_phone_number_in_the_error_is_masked_in_every_log_line(
    user_prop_conn, monkeypatch, caplog
) -> None:
    log_calls(user_prop_conn, filler(100))
    log_calls(user_prop_conn, [call_body("poison", caller="13900000004", start_time=at(1))])
    (poison,) = log_ids(user_prop_conn, "poison")

    def failing(candidates, *args, **kwargs):
        if any(c.id == poison for c in candidates):
            raise KeyError("13900000004")
        return real(candidates, *args, **kwargs)

    real = verdicts.judge_calls
    monkeypatch.setattr(verdicts, "judge_calls", failing)
    caplog.set_level(logging.INFO)
    judge(user_prop_conn, batch_size=5000)
    age_hold(user_prop_conn, "poison", 5)
    judge(user_prop_conn)
    logged = [r.getMessage() for r in caplog.records]
    assert any("*******0004" in m for m in logged)
    assert not [m for m in logged if "13900000004" in m]
