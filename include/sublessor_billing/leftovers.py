"""What call400_billing has left to do in user_prop_db, in one cheap indexed query.

"Work" that starts a run (runtime.md, "Draining") is messages queued (the
sensor asks the broker) or any of these, found here, each what a pass would act on:

- ``unjudged``: a call not judged yet (``filter_rule = 0 AND judged_at IS NULL``);
- ``reset_by_hand``: a call set back to rule 0 by hand that still has a
  ``judged_at`` (no ``held_reason``): the judge reopens it (``judge.HAND_RESET``);
- ``retry_due``: a held call the judge failed on whose automatic retry is due
  (``held.DUE``); other held calls wait for a person, so they are not work;
- ``unallocated``: a valid call without an order that can be given one, where
  the allocation's sweep looks (payments/sweep.py): the (filter_rule 1,
  order_allocated 0) range of ``idx_unallocated`` outside the part of the history
  not flagged yet (``flags.sweep_skip``). Once the history is flagged
  (payments/flags.py) that range only holds calls just judged and the ones missed
  (an ``order_allocated`` set back to 0 included); while it is being flagged, also
  the calls above the history's end and those below flagging's position.
  Before any pass recorded where the history ends, that cannot be told cheaply:
  then this is work, and the pass records it;
- ``pending_orders``: an order whose outcome is unknown (ids below the range are
  held back for a person, never sent, so not work);
- ``undelivered``: an offline decision the listing service has not confirmed,
  that no pass holds a live claim on (``claimed_until``) and that was not handed
  over within ``RETRY_AFTER_S`` (``attempted_at``);
- ``schema_behind``: the query names a table or column user_prop_db lacks
  (MySQL error 1146 or 1054): no pass has migrated it yet; the pass does, and
  settles whatever an older version left.

A pending order that a pass tried less than ``RETRY_AFTER_S`` ago (the pass's
own retries did not settle it, and the run failed) holds back all pending
orders: the next pass is then at most that much later, not a tight loop of
failing runs while the payment center is down (a sublessor's later orders wait
behind its unknown one, never sent, so they cannot count on their own). Orders
never sent (a crashed pass) are work at once. A decision counts on its own: a
pass sends every unclaimed pending one.

Each EXISTS reads one index range that is empty in normal operation
(``explain`` shows which); the sensor runs the query every poll, on a
connection of its own opened for it, after reading what the sweep skips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sublessor_billing.calls.held import DUE, due_params
from sublessor_billing.calls.judge import HAND_RESET
from sublessor_billing.db.tables import CALL_LOG, OFFLINE_EVENT, PAYMENT_LOG
from sublessor_billing.db.transaction import mysql_error_code, transaction
from sublessor_billing.payments import flags
from sublessor_billing.payments.outcomes import ORDER_ID_MIN
from sublessor_billing.payments.store import FITS_PAYMENT_LOG, NO_ORDER, WITHOUT_ORDER
from sublessor_billing.payments.sweep import OUTSIDE_SKIP

RETRY_AFTER_S = 30
# MySQL errors that mean user_prop_db is behind the code: no such table, no such column.
SCHEMA_BEHIND = (1146, 1054)

# Parameters, in order: held.DUE's three, the two bounds the sweep skips between
# (flags.sweep_skip), the lowest order id, RETRY_AFTER_S twice.
QUERY = f"""
SELECT
  EXISTS (SELECT 1 FROM {CALL_LOG} FORCE INDEX (idx_filter_rule)
          WHERE filter_rule = 0 AND judged_at IS NULL) AS unjudged,
  EXISTS (SELECT 1 FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) WHERE {HAND_RESET})
    AS reset_by_hand,
  EXISTS (SELECT 1 FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) WHERE {DUE}) AS retry_due,
  EXISTS (SELECT 1 FROM {CALL_LOG} c FORCE INDEX (idx_unallocated) {WITHOUT_ORDER}
          WHERE c.filter_rule = 1 AND c.order_allocated = 0 AND {OUTSIDE_SKIP}
            AND {NO_ORDER} AND {FITS_PAYMENT_LOG}) AS unallocated,
  EXISTS (SELECT 1 FROM {PAYMENT_LOG} FORCE INDEX (idx_status)
          WHERE status = 'pending' AND id >= %s)
  AND NOT EXISTS (SELECT 1 FROM {PAYMENT_LOG} FORCE INDEX (idx_status)
          WHERE status = 'pending' AND sent_at > NOW(3) - INTERVAL %s SECOND)
    AS pending_orders,
  EXISTS (SELECT 1 FROM {OFFLINE_EVENT} FORCE INDEX (idx_status)
          WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < NOW(3))
            AND (attempted_at IS NULL OR attempted_at <= NOW(3) - INTERVAL %s SECOND))
    AS undelivered
"""


@dataclass(frozen=True)
class Leftovers:
    unjudged: bool = False
    reset_by_hand: bool = False
    retry_due: bool = False
    unallocated: bool = False
    pending_orders: bool = False
    undelivered: bool = False
    schema_behind: bool = False

    def __bool__(self) -> bool:
        return any(asdict(self).values())

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)

    def describe(self) -> str:
        """The kinds of work found, e.g. ``"pending_orders, undelivered"`` (``"none"``)."""
        return ", ".join(name for name, found in asdict(self).items() if found) or "none"


def _params(skip: tuple[int, int] | None, retry_after_s: float) -> tuple[Any, ...]:
    retry_after = float(retry_after_s)
    after, upto = (None, None) if skip is None else skip
    return (*due_params(), after, upto, ORDER_ID_MIN, retry_after, retry_after)


def find_leftovers(conn: Any, *, retry_after_s: float = RETRY_AFTER_S) -> Leftovers:
    """Read what the sweep skips, then run the query once (read-only; the snapshot is ended)."""
    try:
        with transaction(conn) as cur:
            skip = flags.recorded_skip(cur)
            cur.execute(QUERY, _params(skip, retry_after_s))
            row = [bool(value) for value in cur.fetchone()]
    except Exception as exc:
        if mysql_error_code(exc) in SCHEMA_BEHIND:
            return Leftovers(schema_behind=True)
        raise
    if skip is None:  # no pass recorded where the history ends (comparing to NULL read nothing)
        row[3] = True
    return Leftovers(*row)


def explain(conn: Any, *, retry_after_s: float = RETRY_AFTER_S) -> list[dict[str, Any]]:
    """EXPLAIN of the query at what the sweep skips now: one row per table read (tests check
    each subquery uses its index)."""
    with transaction(conn) as cur:
        skip = flags.recorded_skip(cur)
        cur.execute("EXPLAIN " + QUERY, _params(skip or (0, 0), retry_after_s))
        columns = [d[0] for d in cur.description]
        plan = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    return plan
