"""Judging one call at a time: after a batch failed on a value, and when retrying held calls.

Each call is judged in its own savepoint, in (start_time, id) order, so it sees
the valid calls written before it and the outcome is the batch's. A call that
fails alone is held (calls.held) and retried on later passes. A fault that makes
many calls fail is not the calls': more than ``FAULT_CALLS`` calls, or more than
``FAULT_SHARE`` of a batch (so any failure in a batch of fewer than 100 calls),
raise ``JudgeFault``: the batch is rolled back, nothing is held, the task fails
and retries, so a regression stops billing loudly instead of holding valid calls.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sublessor_billing.calls.held import (
    FAILED,
    due_retries,
    held_calls,
    hold,
    hold_again,
    implausible_start,
    unhold,
)
from sublessor_billing.calls.rules import Candidate
from sublessor_billing.calls.verdicts import (
    CANDIDATE_COLUMNS,
    decide,
    exc_name,
    one_call_could_cause,
    read_candidates,
    server_now,
    write_rules,
)
from sublessor_billing.db.transaction import transaction
from sublessor_billing.phone import mask_numbers

log = logging.getLogger(__name__)

FAULT_CALLS = 10
FAULT_SHARE = 0.01
RETRIES_PER_PASS = 500


class JudgeFault(RuntimeError):
    """Judging failed for too many calls of a batch: the judge or the database is at fault."""


def judge_singly(
    conn: Any, *, short_threshold: int, repeat_window: int, batch_size: int
) -> Counter:
    """Judge the batch again one call per savepoint, in order; hold the few calls that fail alone."""
    counts: Counter = Counter()
    with transaction(conn) as cur:
        candidates, held = read_candidates(cur, batch_size)
        failures: dict[int, BaseException] = {}
        for call in sorted(candidates, key=lambda c: (c.start_time, c.id)):
            failure = _judge_one(cur, call, short_threshold, repeat_window, counts)
            if failure is not None:
                failures[call.id] = failure
                if len(failures) > FAULT_CALLS:
                    break  # the judge's fault already: no need to try the rest
        if failures and (
            len(failures) > FAULT_CALLS or len(failures) > FAULT_SHARE * len(candidates)
        ):
            raise _fault(failures, len(candidates)) from next(iter(failures.values()))
        for log_id, exc in failures.items():
            held[log_id] = f"{FAILED}{exc_name(exc)}: {exc}"
        counts["held"] += hold_and_report(cur, held)
    return counts


def retry_held(conn: Any, *, short_threshold: int, repeat_window: int) -> Counter:
    """Judge the held calls the judge failed on whose retry is due; hold again those that fail."""
    counts: Counter = Counter()
    with transaction(conn) as cur:
        due = due_retries(cur, CANDIDATE_COLUMNS, RETRIES_PER_PASS)
        now = server_now(cur) if due else None
        for *fields, received_at in due:
            counts["held_retried"] += 1
            call = Candidate(*fields)
            why = implausible_start(call.start_time, received_at, now)
            if why is not None:  # the row was edited since: it needs a person now
                hold_again(cur, call.id, why)
                continue
            cur.execute("SAVEPOINT retry")
            unhold(cur, call.id)
            failure = _judge_one(cur, call, short_threshold, repeat_window, counts)
            if failure is None:
                counts["held_recovered"] += 1
                log.warning("Held call (call log id %s) judged on a retry", call.id)
                continue
            cur.execute("ROLLBACK TO SAVEPOINT retry")
            hold_again(cur, call.id, f"{FAILED}{exc_name(failure)}: {failure}")
            log.warning(
                "Held call (call log id %s) failed again on a retry (%s: %s); it stays held",
                call.id,
                exc_name(failure),
                mask_numbers(str(failure)),
            )
    return counts


def hold_and_report(cur: Any, reasons: dict[int, str]) -> int:
    """Hold the calls (call log id -> reason) and log an ERROR for each; return how many."""
    if not reasons:
        return 0
    held = hold(cur, reasons)
    for call in held_calls(cur, ids=sorted(reasons), limit=len(reasons)):
        retried = call["reason"].startswith(FAILED)
        log.error(
            "Held call_id %r (call log id %s, sublessor %s, caller %s): %s. It is neither "
            "judged nor charged until %s (python -m sublessor_billing.calls.quarantine "
            "release %s).",
            call["call_id"],
            call["id"],
            call["sublessor_id"],
            call["caller"],
            mask_numbers(call["reason"]),
            "a retry succeeds or an operator releases it"
            if retried
            else "an operator fixes the row and releases it",
            call["id"],
        )
    return held


def _judge_one(
    cur: Any, call: Candidate, short_threshold: int, repeat_window: int, counts: Counter
) -> BaseException | None:
    """Judge one call in a savepoint; return the value error that made it fail, if any."""
    cur.execute("SAVEPOINT one_call")
    try:
        counts.update(write_rules(cur, decide(cur, [call], short_threshold, repeat_window)))
    except Exception as exc:
        if not one_call_could_cause(exc):
            raise
        cur.execute("ROLLBACK TO SAVEPOINT one_call")
        return exc
    return None


def _fault(failures: dict[int, BaseException], batch: int) -> JudgeFault:
    log_id, first = next(iter(failures.items()))
    return JudgeFault(
        f"Judging failed for {len(failures)}{'+' if len(failures) > FAULT_CALLS else ''} of the "
        f"{batch} calls of a batch (call log id {log_id}: {exc_name(first)}: "
        f"{mask_numbers(str(first))}). More "
        f"than {FAULT_CALLS} calls or {FAULT_SHARE:.0%} of a batch failing is a fault of the "
        "judge or the database, not of the calls: nothing was held or judged in this batch. "
        "Fix the cause; the task retries."
    )
