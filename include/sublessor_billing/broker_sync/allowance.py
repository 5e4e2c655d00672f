"""The record of each run's ``allow_removals_up_to`` (table broker_phone_removal_allowance).

A run's first accepted sync inserts its row; every accepted sync of that run
(a retry, the run cleared and run again) adds what it removed, in its own
transaction. What is left (``up_to - removed``) bounds the run's next try; a
refused try records nothing. Rows are kept: they say who was allowed what.
"""

from __future__ import annotations

import logging
from typing import Any

from sublessor_billing.broker_sync.limits import PARAM, Allowance

log = logging.getLogger(__name__)

_ENSURE = "INSERT IGNORE INTO broker_phone_removal_allowance (run_id, up_to) VALUES (%s, %s)"
_LOCK = "SELECT up_to, removed FROM broker_phone_removal_allowance WHERE run_id = %s FOR UPDATE"
_SPEND = "UPDATE broker_phone_removal_allowance SET removed = %s WHERE run_id = %s"


def open_allowance(cur: Any, allowance: Allowance) -> tuple[int, int]:
    """Lock the run's record (created at its first use); return (up_to, removed so far)."""
    cur.execute(_ENSURE, (allowance.run_id, allowance.up_to))
    cur.execute(_LOCK, (allowance.run_id,))
    up_to, removed = (int(value) for value in cur.fetchone())
    if up_to != allowance.up_to:
        log.warning(
            "Run %s was first allowed %s=%s, now %s: the first value stands",
            allowance.run_id,
            PARAM,
            up_to,
            allowance.up_to,
        )
    return up_to, removed


def spend(cur: Any, run_id: str, removed_total: int) -> None:
    """Record what the run has removed in all, in the transaction of its removals."""
    cur.execute(_SPEND, (removed_total, run_id))
