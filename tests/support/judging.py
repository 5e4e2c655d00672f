"""Calls written straight into the call log and judged: the judge tests' vocabulary."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sublessor_billing.calls import verdicts
from sublessor_billing.calls.judge import judge_pending
from sublessor_billing.calls.message import parse_message
from sublessor_billing.calls.store import insert_calls
from support.calls import call_body

T0 = datetime(2026, 3, 1, 10, 0, 0)
DAY = 86400
RECEIVED = T0 + timedelta(days=30)  # the intake time the test messages are validated against


def at(seconds: int) -> str:
    """``start_time`` this many seconds after T0."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def log_calls(conn: Any, bodies: list[bytes]) -> None:
    """Validate message bodies as intake does and log them, unjudged."""
    calls = [parse_message(b, received_at=RECEIVED) for b in bodies]
    with conn.cursor() as cur:
        insert_calls(cur, calls)
    conn.commit()


def judge(conn: Any, **kwargs: Any) -> dict[str, int]:
    """One judge pass with the contract's thresholds, in small batches of 7 unless told."""
    options = {"short_threshold": 8, "repeat_window": DAY, "batch_size": 7}
    options.update(kwargs)
    return judge_pending(conn, **options)


def rules(conn: Any) -> dict[str, int]:
    """call_id -> filter_rule, as committed."""
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("SELECT call_id, filter_rule FROM sublessor_call_log_201409")
        return dict(cur.fetchall())


def insert_raw(conn: Any, call_id: str, start_time: str, caller: str = "13700000000") -> None:
    """A row written straight into the log, as rows logged before validation refused it were."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, caller_normalized,"
            " called, status, start_time, duration) VALUES (%s, 10086, %s, %s, '4008123456', 1, %s, 95)",
            (call_id, caller, caller, start_time),
        )
    conn.commit()


def hold_state(conn: Any) -> dict[str, tuple]:
    """call_id -> (filter_rule, judged, held_reason) of the held calls."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT call_id, filter_rule, judged_at IS NOT NULL, held_reason"
            " FROM sublessor_call_log_201409 WHERE held_reason IS NOT NULL"
        )
        found = {row[0]: row[1:] for row in cur.fetchall()}
    conn.rollback()
    return found


def filler(count: int) -> list[bytes]:
    """Valid calls of distinct callers: one failing call of 100 is within the 1% a batch may hold."""
    return [
        call_body(f"filler-{i}", caller=f"1350000{i:04d}", sublessor_id=20000, start_time=at(i))
        for i in range(count)
    ]


def log_ids(conn: Any, pattern: str) -> list[int]:
    """Call log ids of the calls whose call_id is LIKE ``pattern``, in id order."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM sublessor_call_log_201409 WHERE call_id LIKE %s ORDER BY id", (pattern,)
        )
        found = [row[0] for row in cur.fetchall()]
    conn.rollback()
    return found


def fail_on(monkeypatch: Any, ids: set[int]) -> None:
    """Fault injection: judging any of these calls raises a value error (not foreseen by the judge)."""
    real = verdicts.judge_calls

    def failing(candidates, *args, **kwargs):
        candidates = list(candidates)
        if any(c.id in ids for c in candidates):
            raise OverflowError("date value out of range")
        return real(candidates, *args, **kwargs)

    monkeypatch.setattr(verdicts, "judge_calls", failing)
