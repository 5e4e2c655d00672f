"""Judge unjudged calls in set-based batches under a named lock.

Per batch: the oldest unjudged calls (index ``idx_filter_rule``), the valid
calls of the same (caller, sublessor) pairs near them (``idx_caller_sublessor``),
the brokers among their callers (``broker_phone.idx_phone``); the rules are
applied in Python (rules.judge_calls) and written back with one UPDATE per rule
value, guarded by ``filter_rule = 0`` so a judged call is never judged again
(calls.verdicts).

No single call can stop the others: a call whose start_time intake would refuse
is held (calls.held) before judging, the date arithmetic is clamped, and a batch
that still fails on a value is judged again one call per savepoint, holding the
few calls that fail alone while the others are judged (calls.singly), and
retrying them on later passes. Every pass reports the calls still held.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sublessor_billing.calls.held import count_held, held_calls
from sublessor_billing.calls.history import IN_CHUNK, PAIRS_PER_QUERY
from sublessor_billing.calls.rules import FilterRule, window_delta
from sublessor_billing.calls.singly import hold_and_report, judge_singly, retry_held
from sublessor_billing.calls.verdicts import (
    RULE_NAMES,
    decide,
    exc_name,
    one_call_could_cause,
    read_candidates,
    write_rules,
)
from sublessor_billing.db.named_lock import LockTimeout, named_lock
from sublessor_billing.db.tables import CALL_LOG
from sublessor_billing.db.transaction import read_only, transaction
from sublessor_billing.phone import mask_numbers

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
# Calls set back to filter_rule 0 by hand that still have a judged_at (held calls excluded).
HAND_RESET = (
    f"filter_rule = {FilterRule.UNJUDGED:d} AND judged_at IS NOT NULL AND held_reason IS NULL"
)
OLDEST_HELD_SHOWN = 5


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
    pairs_per_query: int = PAIRS_PER_QUERY,
    in_chunk: int = IN_CHUNK,
) -> dict[str, int]:
    """Judge every call with filter_rule 0; return how many got each rule.

    ``batch_size`` calls are judged per transaction; their history is looked up
    ``pairs_per_query`` (caller, sublessor) pairs per query and IN (...) lists hold
    at most ``in_chunk`` values (the defaults are the production sizes).

    ``held`` counts the calls this pass held (neither judged nor charged until a
    retry judges them or an operator releases them, see calls.held),
    ``held_retried`` / ``held_recovered`` the held calls retried / judged on a
    retry, ``held_total`` all calls held now.
    """
    window_delta(repeat_window)  # a negative window is a configuration error: fail early
    options = {"short_threshold": short_threshold, "repeat_window": repeat_window}
    sizes = {"batch_size": batch_size, "pairs_per_query": pairs_per_query, "in_chunk": in_chunk}
    totals: Counter[str] = Counter()
    with judge_lock(conn, lock_timeout):
        reopen_hand_reset(conn)
        totals.update(retry_held(conn, **options))  # oldest first: they started earlier
        while True:
            try:
                done = judge_batch(conn, **options, **sizes)
            except Exception as exc:
                if not one_call_could_cause(exc):
                    raise  # connection, lock or permission: the task fails and retries
                log.warning(
                    "Judging a batch failed (%s: %s); judging its calls one by one",
                    exc_name(exc),
                    mask_numbers(str(exc)),
                )
                done = judge_singly(conn, **options, batch_size=batch_size)
            if not done:
                break
            totals.update(done)
        with read_only(conn) as cur:
            held_total = count_held(cur)
            oldest = held_calls(cur, limit=OLDEST_HELD_SHOWN) if held_total else []
    result = {name: totals.get(name, 0) for name in RULE_NAMES.values()}
    result["judged"] = sum(result.values())
    for key in ("held", "held_retried", "held_recovered"):
        result[key] = totals.get(key, 0)
    result["held_total"] = held_total
    log.info("Judged %s calls: %s", result["judged"], result)
    if held_total:
        _warn_held(held_total, oldest)
    return result


def _warn_held(held_total: int, oldest: list[dict]) -> None:
    log.warning(
        "%s calls are held, neither judged nor charged (python -m sublessor_billing.calls."
        "quarantine held; docs/intake.md). Oldest: %s",
        held_total,
        "; ".join(
            f"call_id {c['call_id']!r} (call log id {c['id']}, sublessor {c['sublessor_id']}, "
            f"caller {c['caller']}, held {c['held_count']}x, last {c['held_at']}: "
            f"{mask_numbers(c['reason'])})"
            for c in oldest
        ),
    )


def reopen_hand_reset(conn: Any) -> int:
    """Clear judged_at of calls set back to filter_rule 0 by hand, so the judge sees them.

    Candidates are read as (filter_rule 0, judged_at NULL) in idx_filter_rule;
    the judge itself leaves a 0 with a judged_at only on a held call, which has a
    held_reason and is skipped here (calls.held). Normally an empty range.
    """
    with transaction(conn) as cur:
        reopened = cur.execute(f"UPDATE {CALL_LOG} SET judged_at = NULL WHERE {HAND_RESET}")
    if reopened:
        log.warning("%s calls had filter_rule 0 and a judged_at: judging them again", reopened)
    return int(reopened)


def judge_batch(
    conn: Any,
    *,
    short_threshold: int,
    repeat_window: int,
    batch_size: int,
    pairs_per_query: int = PAIRS_PER_QUERY,
    in_chunk: int = IN_CHUNK,
) -> Counter:
    """Judge the oldest ``batch_size`` unjudged calls and commit; empty when none was left."""
    with transaction(conn) as cur:
        candidates, implausible = read_candidates(cur, batch_size)
        if not candidates and not implausible:
            return Counter()  # nothing was written: the commit ends the read
        decided = decide(
            cur,
            candidates,
            short_threshold,
            repeat_window,
            pairs_per_query=pairs_per_query,
            in_chunk=in_chunk,
        )
        counts = write_rules(cur, decided, in_chunk=in_chunk)
        counts["held"] += hold_and_report(cur, implausible)
    return counts
