"""The judge's steps on a set of calls: read them, decide their rules, write the rules back.

Shared by the batch judge (calls.judge) and the one-call-at-a-time paths
(calls.singly). Nothing here commits.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sublessor_billing.calls.held import implausible_start
from sublessor_billing.calls.history import (
    IN_CHUNK,
    PAIRS_PER_QUERY,
    fetch_brokers,
    fetch_valid_starts,
)
from sublessor_billing.calls.rules import Candidate, FilterRule, judge_calls, needs_history
from sublessor_billing.calls.store import is_data_error
from sublessor_billing.db.named_lock import LockTimeout
from sublessor_billing.db.sql import chunks, marks
from sublessor_billing.db.tables import CALL_LOG

# The names the judge counts by: valid, not_connected, too_short, repeat, broker.
RULE_NAMES = {rule: rule.name.lower() for rule in FilterRule if rule is not FilterRule.UNJUDGED}
_UNJUDGED = f"filter_rule = {FilterRule.UNJUDGED:d}"
# What a candidate is read as: Candidate's fields, then received_at (for screening).
CANDIDATE_COLUMNS = "id, caller_normalized, sublessor_id, status, start_time, duration, received_at"


def read_candidates(cur: Any, batch_size: int) -> tuple[list[Candidate], dict[int, str]]:
    """The oldest unjudged calls, and (call log id -> why) those whose start_time cannot be judged."""
    now = server_now(cur)
    cur.execute(
        f"SELECT {CANDIDATE_COLUMNS} FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) "
        f"WHERE {_UNJUDGED} AND judged_at IS NULL "
        "ORDER BY start_time, id LIMIT %s",
        (batch_size,),
    )
    return screen(cur.fetchall(), now)


def server_now(cur: Any) -> datetime:
    cur.execute("SELECT NOW()")
    return cur.fetchone()[0]


def screen(rows: Sequence[Sequence[Any]], now: datetime) -> tuple[list[Candidate], dict[int, str]]:
    """Split rows read as CANDIDATE_COLUMNS into candidates and (id -> why it cannot be judged)."""
    candidates, implausible = [], {}
    for *fields, received_at in rows:
        why = implausible_start(fields[4], received_at, now)
        if why is None:
            candidates.append(Candidate(*fields))
        else:
            implausible[fields[0]] = why
    return candidates, implausible


def decide(
    cur: Any,
    candidates: Sequence[Candidate],
    short_threshold: int,
    repeat_window: int,
    *,
    pairs_per_query: int = PAIRS_PER_QUERY,
    in_chunk: int = IN_CHUNK,
) -> dict[int, int]:
    """Call log id -> rule, against the valid calls and brokers in the database."""
    history = [c for c in candidates if needs_history(c, short_threshold)]
    valid_starts = fetch_valid_starts(cur, history, repeat_window, pairs_per_query=pairs_per_query)
    brokers = fetch_brokers(cur, {c.caller_normalized for c in history}, in_chunk=in_chunk)
    return judge_calls(
        candidates,
        valid_starts,
        brokers,
        short_threshold=short_threshold,
        repeat_window=repeat_window,
    )


def write_rules(cur: Any, decided: dict[int, int], *, in_chunk: int = IN_CHUNK) -> Counter:
    """One guarded UPDATE per rule value (a judged call is never judged again); count by rule name."""
    by_rule: dict[int, list[int]] = defaultdict(list)
    for call_id, rule in decided.items():
        by_rule[rule].append(call_id)
    counts: Counter = Counter()
    for rule, ids in sorted(by_rule.items()):
        for chunk in chunks(ids, in_chunk):
            cur.execute(
                f"UPDATE {CALL_LOG} SET filter_rule = {rule:d}, judged_at = NOW(3) "
                f"WHERE {_UNJUDGED} AND id IN ({marks(chunk)})",
                chunk,
            )
            counts[RULE_NAMES[rule]] += cur.rowcount
    return counts


def one_call_could_cause(exc: BaseException) -> bool:
    """A value problem (Python arithmetic/type errors, a server data error), not the connection."""
    import MySQLdb

    return not isinstance(exc, MySQLdb.Error | LockTimeout) or is_data_error(exc)


def exc_name(exc: BaseException) -> str:
    return type(exc).__name__
