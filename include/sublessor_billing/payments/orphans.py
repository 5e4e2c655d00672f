"""Valid calls flagged as having an order whose payment row is gone: named, then reset to 0.

``order_allocated = 1`` is set in the transaction that writes the call's payment
row (for the history, only where one exists), and no code of ours deletes a
payment row. A person may: the repair of order ids below the range deletes
pending rows that were never sent; ``python -m sublessor_billing.payments.repair
release-held`` resets their calls in the same transaction, but done by hand the
second step can be forgotten. Such a call would never be charged: neither the
high-water range nor the sweep reads a call at 1.

``reset_orphans`` reads the valid calls judged in the last ``WINDOW_HOURS`` (a
range of ``idx_filter_rule``, and its normally empty NULL ``judged_at`` range),
each call's order by ``uk_call_id``, at most once per ``EVERY_HOURS`` (``job_cursor``
row ``payment_orphan_check``: ``position_time`` the last run, ``position_id``
what it found). A plain read finds them, so nothing is locked while the range is
read; each is then set back to 0 by primary key, re-checked, and the allocation
of the same pass gives it an order. 0 in normal operation; more is a warning
naming up to ``SHOWN`` call ids. Older calls: the command's ``orphans --days N``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sublessor_billing.payments.store import CALL_LOG, NO_ORDER, WITHOUT_ORDER, explain

log = logging.getLogger(__name__)

CURSOR = "payment_orphan_check"
WINDOW_HOURS = 48
EVERY_HOURS = 1
LIMIT = 10_000  # calls reset per transaction
SHOWN = 20

ORPHANS = f"""
SELECT c.id, c.call_id FROM {CALL_LOG} c FORCE INDEX (idx_filter_rule) {WITHOUT_ORDER}
WHERE c.filter_rule = 1 AND (c.judged_at IS NULL OR c.judged_at >= NOW(3) - INTERVAL %s HOUR)
  AND c.order_allocated = 1 AND {NO_ORDER}
ORDER BY c.id LIMIT %s"""
_RESET = f"""
UPDATE {CALL_LOG} c FORCE INDEX (PRIMARY) {WITHOUT_ORDER}
SET c.order_allocated = 0
WHERE c.id IN ({{ids}}) AND c.filter_rule = 1 AND c.order_allocated = 1 AND {NO_ORDER}"""
_DUE = (
    "SELECT position_time IS NULL OR position_time < NOW() - INTERVAL %s HOUR"
    " FROM job_cursor WHERE name = %s"
)
_DONE = (
    "INSERT INTO job_cursor (name, position_id, position_time) VALUES (%s, %s, NOW())"
    " ON DUPLICATE KEY UPDATE position_id = VALUES(position_id), position_time = NOW()"
)


@dataclass(frozen=True)
class Orphans:
    reset: int  # calls set back to 0
    call_ids: tuple[str, ...]  # the first SHOWN of them


def reset_orphans(
    conn: Any,
    *,
    window_hours: int = WINDOW_HOURS,
    every_hours: int = EVERY_HOURS,
    force: bool = False,
) -> Orphans | None:
    """Set valid calls judged in the window that are at 1 without a payment row back to 0.

    None: not due (ran less than ``every_hours`` ago; ``force`` runs it anyway).
    """
    if not force:
        with conn.cursor() as cur:
            cur.execute(_DUE, (int(every_hours), CURSOR))
            row = cur.fetchone()
        conn.commit()
        if row is not None and not row[0]:
            return None
    reset, shown = 0, []
    while True:
        try:
            with conn.cursor() as cur:
                cur.execute(ORPHANS, (int(window_hours), LIMIT))
                found = [(int(r[0]), str(r[1])) for r in cur.fetchall()]
                if found:
                    reset += int(
                        cur.execute(
                            _RESET.format(ids=",".join(["%s"] * len(found))),
                            [row_id for row_id, _ in found],
                        )
                    )
                    shown.extend(call_id for _, call_id in found[: SHOWN - len(shown)])
                if len(found) < LIMIT:
                    cur.execute(_DONE, (CURSOR, reset))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        if len(found) < LIMIT:
            break
    if reset:
        log.warning(
            "%s valid call(s) judged in the last %s h had order_allocated = 1 but no payment "
            "row (deleted by hand?): set back to 0, this pass gives them an order: %s%s. See "
            "docs/payments.md, 'A call flagged without its order'.",
            reset, window_hours, ", ".join(shown), " ..." if reset > len(shown) else "",
        )  # fmt: skip
    return Orphans(reset, tuple(shown))


def orphans_plan(conn: Any) -> list[dict]:
    """EXPLAIN of the check's read (tests: a range of idx_filter_rule, never a scan)."""
    return explain(conn, ORPHANS, (WINDOW_HOURS, LIMIT))
