"""A consumer killed before its commit or between commit and ack loses and duplicates nothing."""

from __future__ import annotations

import pytest
from support.calls import call_body, drain_queued
from support.crash import assert_killed, run_child
from support.waiting import wait_until

pytestmark = pytest.mark.integration
# Intake in a child process, killed (SIGKILL) before its first commit, or after the
# commit as it is about to acknowledge.
CONSUMER = """
import sys

import pika
from support.amqp import AMQP_URL
from support.crash import KillAt, target_from_env

from sublessor_billing.calls.intake import drain
from sublessor_billing.db.connect import connect

mode, queue = sys.argv[1:3]
conn = connect(target_from_env())
channel = pika.BlockingConnection(pika.URLParameters(AMQP_URL)).channel()
if mode == "before_commit":
    conn = KillAt(conn, "commit")
else:
    channel = KillAt(channel, "basic_ack")
# The first batch is 20 messages, whatever the machine's load: no time-based flush.
drain(channel, queue, conn, max_messages=10_000, batch_size=20, idle_seconds=60, max_batch_age=3600)
sys.exit(3)  # the kill point was never hit
"""


@pytest.mark.parametrize(
    ("mode", "committed_before_kill"), [("before_commit", 0), ("after_commit", 20)]
)
def test_killed_consumer_then_rerun_logs_each_call_exactly_once(
    call400, amqp_hook, mode, committed_before_kill
) -> None:
    bodies = [
        call_body(f"k{i}", start_time=f"2026-03-01 11:{i // 60:02d}:{i % 60:02d}")
        for i in range(65)
    ]
    call400.publish(bodies[:5] + [b"{broken"] + bodies[5:])
    child = run_child(CONSUMER, mode, call400.queue, target=call400.target)
    assert_killed(child)
    assert call400.query("SELECT COUNT(*) FROM sublessor_call_log_201409") == [
        (committed_before_kill - (1 if committed_before_kill else 0),)
    ]
    # Nothing was acknowledged: every message comes back to the queue (once the broker
    # has noticed the dead connection).
    wait_until(lambda: call400.ready() == 66, 30, "the killed consumer's 66 messages requeued")

    conn = call400.db()
    try:
        result = drain_queued(call400, amqp_hook.channel(), conn)
    finally:
        conn.close()
    assert result.received == 66
    assert result.logged + result.duplicates == 65
    assert result.duplicates == max(committed_before_kill - 1, 0)
    rows = call400.query("SELECT call_id, COUNT(*) FROM sublessor_call_log_201409 GROUP BY call_id")
    assert sorted(r[0] for r in rows) == sorted(f"k{i}" for i in range(65))
    assert {r[1] for r in rows} == {1}
    assert call400.query(
        "SELECT COUNT(*), MAX(reason) LIKE 'body is not JSON%%' FROM call400_quarantine"
    ) == [(1, 1)]
    assert call400.ready() == 0
