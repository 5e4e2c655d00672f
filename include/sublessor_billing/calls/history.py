"""What rules 4 and 5 need from the database: nearby valid calls per pair, and the brokers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sublessor_billing.calls.rules import Candidate, FilterRule, Pair, shift, window_delta
from sublessor_billing.db.sql import chunks, marks
from sublessor_billing.db.tables import BROKER_PHONE, CALL_LOG

PAIRS_PER_QUERY = 1000  # (caller, sublessor) ranges per history query
IN_CHUNK = 2000  # values per IN (...) list


def fetch_valid_starts(
    cur: Any,
    calls: Sequence[Candidate],
    repeat_window: int,
    *,
    pairs_per_query: int = PAIRS_PER_QUERY,
) -> dict[Pair, list]:
    """Start times of valid calls per pair, within the window around that pair's candidates."""
    window = window_delta(repeat_window)
    spans: dict[Pair, list] = {}
    for call in calls:
        span = spans.setdefault(call.pair, [call.start_time, call.start_time])
        span[0] = min(span[0], call.start_time)
        span[1] = max(span[1], call.start_time)
    found: dict[Pair, list] = defaultdict(list)
    for chunk in chunks(list(spans.items()), pairs_per_query):
        # One range per pair on (caller_normalized, sublessor_id, start_time); filter_rule
        # is read from the row. A pair has few calls near its candidates.
        quote = cur.connection.string_literal
        pairs = " UNION ALL ".join(
            f"SELECT {quote(caller.encode()).decode()} AS c, {sublessor:d} AS s, "
            f"CAST('{_dt(shift(low, -window))}' AS DATETIME) AS lo, "
            f"CAST('{_dt(shift(high, window))}' AS DATETIME) AS hi"
            for (caller, sublessor), (low, high) in chunk
        )
        cur.execute(
            f"SELECT l.caller_normalized, l.sublessor_id, l.start_time FROM ({pairs}) AS p "
            f"STRAIGHT_JOIN {CALL_LOG} AS l FORCE INDEX (idx_caller_sublessor) "
            "ON l.caller_normalized = p.c AND l.sublessor_id = p.s "
            "AND l.start_time > p.lo AND l.start_time < p.hi "
            f"WHERE l.filter_rule = {FilterRule.VALID:d}"
        )
        for caller, sublessor, start_time in cur.fetchall():
            found[(caller, int(sublessor))].append(start_time)
    for starts in found.values():
        starts.sort()
    return found


def _dt(value) -> str:
    """A whole-second datetime (DATETIME column plus whole-second window) as SQL text."""
    return value.isoformat(" ", "seconds")


def fetch_brokers(cur: Any, callers: set[str], *, in_chunk: int = IN_CHUNK) -> set[str]:
    """The callers that are in the broker phone library (rule 5)."""
    found: set[str] = set()
    for chunk in chunks(sorted(callers), in_chunk):
        cur.execute(
            f"SELECT DISTINCT phone FROM {BROKER_PHONE} WHERE phone IN ({marks(chunk)})", chunk
        )
        found.update(row[0] for row in cur.fetchall())
    return found
