"""Judge unjudged calls in set-based batches under a named lock.

Per batch: the oldest unjudged calls (index ``idx_filter_rule``), the valid
calls of the same (caller, sublessor) pairs near them (``idx_caller_sublessor``),
the brokers among their callers (``broker_phone.idx_phone``); the rules are
applied in Python (rules.judge_calls) and written back with one UPDATE per rule
value, guarded by ``filter_rule = 0`` so a judged call is never judged again.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sublessor_billing.calls.rules import Candidate, Pair, judge_calls, needs_history
from sublessor_billing.calls.store import CALL_LOG
from sublessor_billing.db.named_lock import LockTimeout, named_lock

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
_PAIRS_PER_QUERY = 1000
_IN_CHUNK = 2000
RULE_NAMES = {1: "valid", 2: "not_connected", 3: "too_short", 4: "repeat", 5: "broker"}


class JudgeLockTimeout(LockTimeout):
    """Another judge (or an order allocation) held ``call400_judge.<db>`` too long."""


@contextmanager
def judge_lock(conn: Any, timeout: int) -> Iterator[None]:
    """Hold the database-wide named lock that serializes judges (manual and scheduled runs)."""
    with named_lock(conn, "call400_judge", timeout, error=JudgeLockTimeout):
        yield


def judge_pending(
    conn: Any,
    *,
    short_threshold: int,
    repeat_window: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lock_timeout: int = 300,
) -> dict[str, int]:
    """Judge every call with filter_rule 0; return how many got each rule."""
    totals: Counter[str] = Counter()
    with judge_lock(conn, lock_timeout):
        reopen_hand_reset(conn)
        while True:
            done = judge_batch(
                conn,
                short_threshold=short_threshold,
                repeat_window=repeat_window,
                batch_size=batch_size,
            )
            if not done:
                break
            totals.update(done)
    result = {name: totals.get(name, 0) for name in RULE_NAMES.values()}
    result["judged"] = sum(totals.values())
    log.info("Judged %s calls: %s", result["judged"], result)
    return result


def reopen_hand_reset(conn: Any) -> int:
    """Clear judged_at of calls set back to filter_rule 0 by hand, so the judge sees them.

    Candidates are read as (filter_rule 0, judged_at NULL) in idx_filter_rule;
    the judge itself never leaves a 0 with a judged_at. Normally an empty range.
    """
    with conn.cursor() as cur:
        reopened = cur.execute(
            f"UPDATE {CALL_LOG} SET judged_at = NULL WHERE filter_rule = 0 AND judged_at IS NOT NULL"
        )
    conn.commit()
    if reopened:
        log.warning("%s calls had filter_rule 0 and a judged_at: judging them again", reopened)
    return int(reopened)


def judge_batch(conn: Any, *, short_threshold: int, repeat_window: int, batch_size: int) -> Counter:
    """Judge the oldest ``batch_size`` unjudged calls and commit; empty when none was left."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, caller_normalized, sublessor_id, status, start_time, duration "
            f"FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) "
            "WHERE filter_rule = 0 AND judged_at IS NULL "
            "ORDER BY start_time, id LIMIT %s",
            (batch_size,),
        )
        candidates = [Candidate(*row) for row in cur.fetchall()]
        if not candidates:
            conn.rollback()
            return Counter()
        history = [c for c in candidates if needs_history(c, short_threshold)]
        valid_starts = fetch_valid_starts(cur, history, repeat_window)
        brokers = fetch_brokers(cur, {c.caller_normalized for c in history})
        decided = judge_calls(
            candidates,
            valid_starts,
            brokers,
            short_threshold=short_threshold,
            repeat_window=repeat_window,
        )
        by_rule: dict[int, list[int]] = defaultdict(list)
        for call_id, rule in decided.items():
            by_rule[rule].append(call_id)
        counts: Counter = Counter()
        for rule, ids in sorted(by_rule.items()):
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                cur.execute(
                    f"UPDATE {CALL_LOG} SET filter_rule = {rule:d}, judged_at = NOW(3) "
                    f"WHERE filter_rule = 0 AND id IN ({_ints(chunk)})"
                )
                counts[RULE_NAMES[rule]] += cur.rowcount
    conn.commit()
    return counts


def fetch_valid_starts(
    cur: Any, calls: Sequence[Candidate], repeat_window: int
) -> dict[Pair, list]:
    """Start times of valid calls per pair, within the window around that pair's candidates."""
    window = timedelta(seconds=repeat_window)
    spans: dict[Pair, list] = {}
    for call in calls:
        span = spans.setdefault(call.pair, [call.start_time, call.start_time])
        span[0] = min(span[0], call.start_time)
        span[1] = max(span[1], call.start_time)
    found: dict[Pair, list] = defaultdict(list)
    items = list(spans.items())
    for start in range(0, len(items), _PAIRS_PER_QUERY):
        chunk = items[start : start + _PAIRS_PER_QUERY]
        # One range per pair on (caller_normalized, sublessor_id, start_time); filter_rule
        # is read from the row. A pair has few calls near its candidates.
        quote = cur.connection.string_literal
        pairs = " UNION ALL ".join(
            f"SELECT {quote(caller.encode()).decode()} AS c, {sublessor:d} AS s, "
            f"CAST('{_dt(low - window)}' AS DATETIME) AS lo, "
            f"CAST('{_dt(high + window)}' AS DATETIME) AS hi"
            for (caller, sublessor), (low, high) in chunk
        )
        cur.execute(
            f"SELECT l.caller_normalized, l.sublessor_id, l.start_time FROM ({pairs}) AS p "
            f"STRAIGHT_JOIN {CALL_LOG} AS l FORCE INDEX (idx_caller_sublessor) "
            "ON l.caller_normalized = p.c AND l.sublessor_id = p.s "
            "AND l.start_time > p.lo AND l.start_time < p.hi WHERE l.filter_rule = 1"
        )
        for caller, sublessor, start_time in cur.fetchall():
            found[(caller, int(sublessor))].append(start_time)
    for starts in found.values():
        starts.sort()
    return found


def _ints(values: Sequence[int]) -> str:
    """Ids from the log as SQL: integers formatted as such cannot inject (no escaping needed)."""
    return ",".join([f"{value:d}" for value in values])


def _dt(value) -> str:
    """A whole-second datetime (DATETIME column plus whole-second window) as SQL text."""
    return value.isoformat(" ", "seconds")


def fetch_brokers(cur: Any, callers: set[str]) -> set[str]:
    """The callers that are in the broker phone library (rule 5)."""
    found: set[str] = set()
    wanted = sorted(callers)
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        cur.execute(
            f"SELECT DISTINCT phone FROM broker_phone WHERE phone IN ({', '.join(['%s'] * len(chunk))})",
            chunk,
        )
        found.update(row[0] for row in cur.fetchall())
    return found
