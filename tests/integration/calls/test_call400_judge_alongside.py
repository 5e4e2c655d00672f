"""Judging while intake runs: same rules as the judge task, the lock respected, failures left to it."""

from __future__ import annotations

import pytest
from call400_fixtures import call_body

from sublessor_billing.calls.intake import drain
from sublessor_billing.calls.judge import JudgeAlongside, judge_lock, judge_pending

pytestmark = pytest.mark.integration
OPTIONS = {"short_threshold": 8, "repeat_window": 86400}


def bodies():
    # c0 valid, c1 its repeat one hour later (same pair), c2 too short, c3 not connected
    return [
        call_body("c0", caller="13900000001", start_time="2026-03-01 10:00:00"),
        call_body("c1", caller="13900000001", start_time="2026-03-01 11:00:00"),
        call_body("c2", caller="13900000002", duration=3),
        call_body("c3", caller="13900000003", status=0),
    ]


def rules(call400) -> dict[str, int]:
    return dict(call400.query("SELECT call_id, filter_rule FROM sublessor_call_log_201409"))


def run(call400, hook, alongside, **options):
    conn = call400.db()
    try:
        with alongside:
            return drain(
                hook.channel(),
                call400.queue,
                conn,
                idle_seconds=0.3,
                on_commit=alongside.notify,
                **options,
            )
    finally:
        conn.close()
        hook.close()


def test_each_committed_batch_is_judged_in_order(call400, amqp_hook) -> None:
    call400.publish(bodies())
    alongside = JudgeAlongside(call400.db, batch_size=2, **OPTIONS)
    result = run(call400, amqp_hook, alongside, max_messages=100, batch_size=1)
    assert result.logged == 4
    assert rules(call400) == {"c0": 1, "c1": 4, "c2": 3, "c3": 2}
    assert sum(alongside.totals.values()) == 4
    assert call400.query(
        "SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE judged_at IS NULL"
    ) == [(0,)]


def test_a_judge_holding_the_lock_leaves_judging_to_the_judge_task(call400, amqp_hook) -> None:
    call400.publish(bodies())
    holder = call400.db()
    try:
        with judge_lock(holder, 5):
            alongside = JudgeAlongside(call400.db, **OPTIONS)
            assert run(call400, amqp_hook, alongside, max_messages=100).logged == 4
            assert set(rules(call400).values()) == {0}, "judged without the lock"
    finally:
        holder.close()
    conn = call400.db()
    try:
        assert judge_pending(conn, **OPTIONS)["judged"] == 4
    finally:
        conn.close()
    assert rules(call400) == {"c0": 1, "c1": 4, "c2": 3, "c3": 2}


def test_a_failing_intake_stops_the_judging_thread(call400, amqp_hook) -> None:
    call400.publish(bodies())
    alongside = JudgeAlongside(call400.db, **OPTIONS)

    def boom():
        alongside.notify()
        raise ConnectionError("broker went away")

    conn = call400.db()
    try:
        with pytest.raises(ConnectionError), alongside:
            drain(amqp_hook.channel(), call400.queue, conn, max_messages=100, on_commit=boom)
    finally:
        conn.close()
        amqp_hook.close()
    assert not alongside._thread.is_alive(), "the thread outlived the failed intake"
    conn = call400.db()  # whatever it left, the judge task judges
    try:
        judge_pending(conn, **OPTIONS)
    finally:
        conn.close()
    assert rules(call400) == {"c0": 1, "c1": 4, "c2": 3, "c3": 2}
