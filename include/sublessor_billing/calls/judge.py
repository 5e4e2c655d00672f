"""Judge unjudged calls in set-based batches under a named lock.

Per batch: the oldest unjudged calls (index ``idx_filter_rule``), the valid
calls of the same (caller, sublessor) pairs near them (``idx_caller_sublessor``),
the brokers among their callers (``broker_phone.idx_phone``); the rules are
applied in Python (rules.judge_calls) and written back with one UPDATE per rule
value, guarded by ``filter_rule = 0`` so a judged call is never judged again.

No single call can stop the others: a call whose start_time intake would refuse
is held (calls.held) before judging, the date arithmetic is clamped, and a batch
that still fails on a value is judged again one call per savepoint, holding the
calls that fail alone while the others are judged.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sublessor_billing.calls.held import count_held, held_calls, hold, implausible_start
from sublessor_billing.calls.history import IN_CHUNK, fetch_brokers, fetch_valid_starts
from sublessor_billing.calls.rules import Candidate, judge_calls, needs_history, window_delta
from sublessor_billing.calls.store import CALL_LOG, is_data_error
from sublessor_billing.db.named_lock import LockTimeout, named_lock

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
RULE_NAMES = {1: "valid", 2: "not_connected", 3: "too_short", 4: "repeat", 5: "broker"}


class JudgeLockTimeout(LockTimeout):
    """Another judge (or an order allocation) held ``call400_judge.<db>`` too long."""


@contextmanager
def judge_lock(conn: Any, timeout: int) -> Iterator[None]:
    """Hold the database-wide named lock that serializes judges (manual and scheduled runs)."""
    with named_lock(conn, "call400_judge", timeout, error=JudgeLockTimeout):
        yield


class JudgeFault(RuntimeError):
    """Judging failed for every call of a batch: the judge or the database is at fault."""


def judge_pending(
    conn: Any,
    *,
    short_threshold: int,
    repeat_window: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lock_timeout: int = 300,
) -> dict[str, int]:
    """Judge every call with filter_rule 0; return how many got each rule.

    ``held`` counts the calls this pass held (never judged nor charged until an
    operator releases them, see calls.held), ``held_total`` all calls now held.
    """
    window_delta(repeat_window)  # a negative window is a configuration error: fail early
    options = {
        "short_threshold": short_threshold,
        "repeat_window": repeat_window,
        "batch_size": batch_size,
    }
    totals: Counter[str] = Counter()
    with judge_lock(conn, lock_timeout):
        reopen_hand_reset(conn)
        while True:
            try:
                done = judge_batch(conn, **options)
            except Exception as exc:
                if not _one_call_could_cause(exc):
                    raise  # connection, lock or permission: the task fails and retries
                conn.rollback()
                log.warning(
                    "Judging a batch failed (%s: %s); judging its calls one by one", _name(exc), exc
                )
                done = judge_singly(conn, **options)
            if not done:
                break
            totals.update(done)
        with conn.cursor() as cur:
            held_total = count_held(cur)
        conn.rollback()
    result = {name: totals.get(name, 0) for name in RULE_NAMES.values()}
    result["judged"] = sum(result.values())
    result["held"] = totals.get("held", 0)
    result["held_total"] = held_total
    log.info("Judged %s calls: %s", result["judged"], result)
    if held_total:
        log.warning(
            "%s calls are held (never judged nor charged until released): "
            "python -m sublessor_billing.calls.quarantine held; see docs/intake.md",
            held_total,
        )
    return result


def reopen_hand_reset(conn: Any) -> int:
    """Clear judged_at of calls set back to filter_rule 0 by hand, so the judge sees them.

    Candidates are read as (filter_rule 0, judged_at NULL) in idx_filter_rule;
    the judge itself leaves a 0 with a judged_at only on a held call, which has a
    held_reason and is skipped here (calls.held). Normally an empty range.
    """
    with conn.cursor() as cur:
        reopened = cur.execute(
            f"UPDATE {CALL_LOG} SET judged_at = NULL "
            "WHERE filter_rule = 0 AND judged_at IS NOT NULL AND held_reason IS NULL"
        )
    conn.commit()
    if reopened:
        log.warning("%s calls had filter_rule 0 and a judged_at: judging them again", reopened)
    return int(reopened)


def judge_batch(conn: Any, *, short_threshold: int, repeat_window: int, batch_size: int) -> Counter:
    """Judge the oldest ``batch_size`` unjudged calls and commit; empty when none was left."""
    with conn.cursor() as cur:
        candidates, implausible = _candidates(cur, batch_size)
        if not candidates and not implausible:
            conn.rollback()
            return Counter()
        decided = _decide(cur, candidates, short_threshold, repeat_window)
        counts = _write_rules(cur, decided)
        counts["held"] += _hold_and_report(cur, implausible)
    conn.commit()
    return counts


def judge_singly(
    conn: Any, *, short_threshold: int, repeat_window: int, batch_size: int
) -> Counter:
    """Judge the same batch one call per savepoint, in order; hold the calls that fail alone.

    Each call sees the valid calls written before it in this transaction, so the
    outcome is the batch's. When every call of a batch of two or more fails, the
    fault is not in the calls: nothing is held and JudgeFault is raised.
    """
    counts: Counter = Counter()
    try:
        with conn.cursor() as cur:
            candidates, held = _candidates(cur, batch_size)
            failures: dict[int, BaseException] = {}
            for call in sorted(candidates, key=lambda c: (c.start_time, c.id)):
                cur.execute("SAVEPOINT one_call")
                try:
                    counts.update(
                        _write_rules(cur, _decide(cur, [call], short_threshold, repeat_window))
                    )
                except Exception as exc:
                    if not _one_call_could_cause(exc):
                        raise
                    cur.execute("ROLLBACK TO SAVEPOINT one_call")
                    failures[call.id] = exc
            if len(candidates) > 1 and len(failures) == len(candidates):
                first = next(iter(failures.items()))
                raise JudgeFault(
                    f"Judging failed for each of the {len(candidates)} calls of a batch (call log "
                    f"id {first[0]}: {_name(first[1])}: {first[1]}): a fault of the judge or the "
                    "database, not of one call. Nothing was held; fix the cause, the task retries."
                ) from first[1]
            for log_id, exc in failures.items():
                held[log_id] = f"the judge failed on this call: {_name(exc)}: {exc}"
            counts["held"] += _hold_and_report(cur, held)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return counts


def _candidates(cur: Any, batch_size: int) -> tuple[list[Candidate], dict[int, str]]:
    """The oldest unjudged calls, and (call log id -> why) those whose start_time cannot be judged."""
    cur.execute("SELECT NOW()")
    now = cur.fetchone()[0]
    cur.execute(
        "SELECT id, caller_normalized, sublessor_id, status, start_time, duration, received_at "
        f"FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) "
        "WHERE filter_rule = 0 AND judged_at IS NULL "
        "ORDER BY start_time, id LIMIT %s",
        (batch_size,),
    )
    candidates, implausible = [], {}
    for *fields, received_at in cur.fetchall():
        why = implausible_start(fields[4], received_at, now)
        if why is None:
            candidates.append(Candidate(*fields))
        else:
            implausible[fields[0]] = why
    return candidates, implausible


def _decide(
    cur: Any, candidates: Sequence[Candidate], short_threshold: int, repeat_window: int
) -> dict[int, int]:
    history = [c for c in candidates if needs_history(c, short_threshold)]
    valid_starts = fetch_valid_starts(cur, history, repeat_window)
    brokers = fetch_brokers(cur, {c.caller_normalized for c in history})
    return judge_calls(
        candidates,
        valid_starts,
        brokers,
        short_threshold=short_threshold,
        repeat_window=repeat_window,
    )


def _write_rules(cur: Any, decided: dict[int, int]) -> Counter:
    by_rule: dict[int, list[int]] = defaultdict(list)
    for call_id, rule in decided.items():
        by_rule[rule].append(call_id)
    counts: Counter = Counter()
    for rule, ids in sorted(by_rule.items()):
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            cur.execute(
                f"UPDATE {CALL_LOG} SET filter_rule = {rule:d}, judged_at = NOW(3) "
                f"WHERE filter_rule = 0 AND id IN ({_ints(chunk)})"
            )
            counts[RULE_NAMES[rule]] += cur.rowcount
    return counts


def _hold_and_report(cur: Any, reasons: dict[int, str]) -> int:
    if not reasons:
        return 0
    held = hold(cur, reasons)
    for call in held_calls(cur, ids=sorted(reasons), limit=len(reasons)):
        log.error(
            "Held call_id %r (call log id %s, sublessor %s, caller %s): %s. It is neither "
            "judged nor charged until an operator fixes the row and releases it "
            "(python -m sublessor_billing.calls.quarantine release %s).",
            call["call_id"],
            call["id"],
            call["sublessor_id"],
            call["caller"],
            call["reason"],
            call["id"],
        )
    return held


def _one_call_could_cause(exc: BaseException) -> bool:
    """A value problem (Python arithmetic/type errors, a server data error), not the connection."""
    import MySQLdb

    return not isinstance(exc, MySQLdb.Error | LockTimeout) or is_data_error(exc)


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _ints(values: Sequence[int]) -> str:
    """Ids from the log as SQL: integers formatted as such cannot inject (no escaping needed)."""
    return ",".join([f"{value:d}" for value in values])
