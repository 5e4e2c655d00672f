"""The record of each run's ``allow_removals_up_to`` (table broker_phone_removal_allowance).

A run's first accepted sync inserts its row; every accepted sync of that run
(a retry, the run cleared and run again) adds what it removed, in its own
transaction. What is left (``up_to - removed``) bounds the run's next try; a
refused try records nothing. Rows are kept: they say who was allowed what.

An allowance is valid for ``VALID_HOURS`` after its first use (``created_at``,
the database's clock): enough for the run's retries and for a person to clear
it and run it again that morning, not for a run cleared days later, which would
otherwise remove up to what it had left, against a source nobody has looked at
since. An expired allowance is ignored: the run is held to the day's share.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, NamedTuple

from sublessor_billing.broker_sync.limits import PARAM, Allowance
from sublessor_billing.db.tables import REMOVAL_ALLOWANCE

log = logging.getLogger(__name__)

VALID_HOURS = 6

_ENSURE = f"INSERT IGNORE INTO {REMOVAL_ALLOWANCE} (run_id, up_to) VALUES (%s, %s)"
_LOCK = (
    "SELECT up_to, removed, created_at, created_at < NOW(3) - INTERVAL %s HOUR"
    f" FROM {REMOVAL_ALLOWANCE} WHERE run_id = %s FOR UPDATE"
)
_SPEND = f"UPDATE {REMOVAL_ALLOWANCE} SET removed = %s WHERE run_id = %s"


class OpenAllowance(NamedTuple):
    """A run's allowance as recorded: ``up_to``, ``used`` so far, when first used, expired."""

    up_to: int
    used: int
    first_used: datetime
    expired: bool


def open_allowance(cur: Any, allowance: Allowance) -> OpenAllowance:
    """Lock the run's record (created at its first use) and read it."""
    cur.execute(_ENSURE, (allowance.run_id, allowance.up_to))
    cur.execute(_LOCK, (VALID_HOURS, allowance.run_id))
    up_to, removed, first_used, expired = cur.fetchone()
    found = OpenAllowance(int(up_to), int(removed), first_used, bool(expired))
    if found.up_to != allowance.up_to:
        log.warning(
            "Run %s was first allowed %s=%s, now %s: the first value stands",
            allowance.run_id,
            PARAM,
            found.up_to,
            allowance.up_to,
        )
    if found.expired:
        log.warning(
            "Run %s's %s=%s was first used at %s, more than %s h ago: it has expired and the "
            "day's share applies. Trigger a new run to allow removals again.",
            allowance.run_id,
            PARAM,
            found.up_to,
            found.first_used,
            VALID_HOURS,
        )
    return found


def spend(cur: Any, run_id: str, removed_total: int) -> None:
    """Record what the run has removed in all, in the transaction of its removals."""
    cur.execute(_SPEND, (removed_total, run_id))
