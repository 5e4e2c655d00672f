"""A consumer killed before its commit or between commit and ack loses and duplicates nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from call400_fixtures import call_body
from support.calls import drain_queued
from support.waiting import wait_until

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("crash_consumer.py")


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
    t = call400.target
    child = subprocess.run(
        [sys.executable, str(SCRIPT), mode, call400.queue, t.host, str(t.port), t.user, t.database],
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
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
