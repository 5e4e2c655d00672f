"""Prove that recognised income matches the successful payments up to the cursor.

Read in one consistent snapshot (the cursor, the income rows and the watch
table were committed together by each batch), set-based. The routine check is
incremental: payments in (last checked, cursor] plus every payment that got
income rows since the last check (late settlements in the old range). A full
check of the whole history runs on request or when the last one is older than
``FULL_CHECK_EVERY_HOURS``. The marks advance only when a check passes. A
mismatch is an error naming payment ids; money no contract could take is only
reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any

from sublessor_billing.accounting.recognise import CURSOR_NAME
from sublessor_billing.db import job_cursor
from sublessor_billing.db.tables import INCOME, JOB_CURSOR, PAYMENT_LOG, UNSETTLED_PAYMENT
from sublessor_billing.db.transaction import transaction
from sublessor_billing.payments.outcomes import PaymentStatus

log = logging.getLogger(__name__)

MAX_NAMED = 50  # offending payment ids named in the error
# job_cursor rows of the check: payments checked up to (position_time = last full
# check that passed), and the highest income row id covered.
CHECK_CURSOR_NAME = "accounting_income_check"
CHECK_INCOME_MARK_NAME = "accounting_income_check_income"
FULL_CHECK_EVERY_HOURS = 24

_FULL_CHECK_DUE_BEFORE = "SELECT NOW() - INTERVAL %s HOUR"
_MAX_INCOME_ID = f"SELECT IFNULL(MAX(id), 0) FROM {INCOME}"
# Local, not job_cursor.save: position_time moves only on a full check (NOW()), else stays.
_SAVE_MARK = (
    f"INSERT INTO {JOB_CURSOR} (name, position_id, position_time) VALUES (%s, %s, IF(%s, NOW(), NULL))"
    " ON DUPLICATE KEY UPDATE position_id = VALUES(position_id),"
    " position_time = IF(%s, NOW(), position_time)"
)
# Per payment in (lo, hi]: success and not watched -> income adds up to the amount;
# anything else (non-success, or still watched) -> no income rows at all.
_RANGE_MISMATCHES = f"""
SELECT p.id, p.status, p.amount, i.total, IFNULL(i.n, 0)
FROM {PAYMENT_LOG} p
LEFT JOIN (
  SELECT payment_id, SUM(amount) AS total, COUNT(*) AS n
  FROM {INCOME}
  WHERE payment_id > %s AND payment_id <= %s GROUP BY payment_id
) i ON i.payment_id = p.id
LEFT JOIN {UNSETTLED_PAYMENT} u ON u.payment_id = p.id
WHERE p.id > %s AND p.id <= %s
  AND CASE WHEN p.status = '{PaymentStatus.SUCCESS}' AND u.payment_id IS NULL
           THEN IFNULL(i.total, 0) <> p.amount
           ELSE i.n IS NOT NULL END
ORDER BY p.id LIMIT %s
"""
# Payments at or below the last checked position that got income rows since the last
# check (late settlements): the same rule, over all of their income rows.
_LATE_MISMATCHES = f"""
SELECT p.id, p.status, p.amount, SUM(i.amount), COUNT(*)
FROM {PAYMENT_LOG} p
JOIN {INCOME} i ON i.payment_id = p.id
LEFT JOIN {UNSETTLED_PAYMENT} u ON u.payment_id = p.id
WHERE p.id IN (
  SELECT payment_id FROM {INCOME}
  WHERE id > %s AND id <= %s AND payment_id <= %s
)
GROUP BY p.id, p.status, p.amount, u.payment_id
HAVING NOT (p.status = '{PaymentStatus.SUCCESS}' AND u.payment_id IS NULL AND SUM(i.amount) = p.amount)
ORDER BY p.id LIMIT %s
"""
# Income rows (new since the mark, or any beyond the cursor) that belong to no
# payment, or to one the cursor has not reached.
_STRAY_INCOME = f"""
SELECT payment_id, COUNT(*), SUM(amount) FROM (
  SELECT i.id, i.payment_id, i.amount
  FROM {INCOME} i
  LEFT JOIN {PAYMENT_LOG} p ON p.id = i.payment_id
  WHERE i.id > %s AND i.id <= %s AND (p.id IS NULL OR i.payment_id > %s)
  UNION
  SELECT id, payment_id, amount FROM {INCOME} WHERE payment_id > %s
) s GROUP BY payment_id ORDER BY payment_id LIMIT %s
"""
_UNALLOCATED = f"""
SELECT COUNT(*), COUNT(DISTINCT payment_id), IFNULL(SUM(amount), 0), COUNT(DISTINCT sublessor_id)
FROM {INCOME} WHERE contract_id IS NULL AND id > %s AND id <= %s
"""
_WATCHED = f"SELECT COUNT(*) FROM {UNSETTLED_PAYMENT}"


class IncomeMismatchError(RuntimeError):
    """Recognised income does not add up to the successful payments."""


# as_dict's names for the fields whose attribute name says less.
_SHOWN_AS = {"full": "full_check", "unallocated_amount": "unallocated_amount_fen"}


@dataclass
class IncomeCheck:
    cursor: int
    full: bool
    checked_from: int  # payments in (checked_from, cursor] were checked in full
    income_mark: int  # highest income row id covered
    unallocated_rows: int
    unallocated_payments: int
    unallocated_amount: int  # fen
    unallocated_sublessors: int
    unsettled_watched: int
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Every field but ``problems`` (the error names them), in field order."""
        return {
            _SHOWN_AS.get(f.name, f.name): getattr(self, f.name)
            for f in fields(self)
            if f.name != "problems"
        }


def check_income(conn: Any, *, full: bool = False) -> IncomeCheck:
    """Check what is new since the last passed check (or everything, when ``full`` or due).

    Raise ``IncomeMismatchError`` naming the payments; advance the marks only on success.
    """
    # Read only: one snapshot, ended by a rollback; the marks are saved in their own transaction.
    conn.rollback()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cursor = _position(cur, CURSOR_NAME)
            state = job_cursor.read(cur, CHECK_CURSOR_NAME)
            cur.execute(_FULL_CHECK_DUE_BEFORE, (FULL_CHECK_EVERY_HOURS,))
            due_before = cur.fetchone()[0]
            income_mark = _position(cur, CHECK_INCOME_MARK_NAME)
            checked = int(state.position_id or 0) if state else 0
            full = (
                full
                or state is None
                or state.position_time is None
                or state.position_time < due_before
                or checked > cursor
            )
            lo, mark = (0, 0) if full else (checked, income_mark)
            cur.execute(_MAX_INCOME_ID)
            top = int(cur.fetchone()[0])

            cur.execute(_RANGE_MISMATCHES, (lo, cursor, lo, cursor, MAX_NAMED))
            mismatches = list(cur.fetchall())
            if not full and top > mark:
                cur.execute(_LATE_MISMATCHES, (mark, top, lo, MAX_NAMED))
                mismatches = sorted(mismatches + list(cur.fetchall()))
            cur.execute(_STRAY_INCOME, (mark, top, cursor, cursor, MAX_NAMED))
            strays = cur.fetchall()
            # Full: the whole table; routine: only the rows new since the mark (PK range).
            cur.execute(_UNALLOCATED, (mark, top))
            rows, payments, amount, sublessors = cur.fetchone()
            cur.execute(_WATCHED)
            watched = cur.fetchone()[0]
    finally:
        conn.rollback()

    result = IncomeCheck(
        cursor, full, lo, top, int(rows), int(payments), int(amount), int(sublessors), int(watched)
    )
    for pid, status, amt, total, n in mismatches:
        result.problems.append(
            f"payment {pid} ({status}, {amt} fen) has {n} income rows totalling {total or 0} fen"
        )
    for pid, n, total in strays:
        result.problems.append(
            f"payment {pid} has {n} income rows ({total} fen) but is missing or beyond cursor {cursor}"
        )
    if result.problems:
        more = (
            f" (first {MAX_NAMED} shown)" if max(len(mismatches), len(strays)) >= MAX_NAMED else ""
        )
        raise IncomeMismatchError(
            f"Accounting income does not match the payments "
            f"({'full check' if full else f'checked from payment {lo}'}) up to cursor {cursor}{more}: "
            + "; ".join(result.problems)
            + ". Do not rerun blindly: find how these rows were changed, correct them, then rerun check_income."
        )
    _save_marks(conn, cursor, top, full)
    if result.unallocated_amount:
        log.warning(
            "%s fen of %s successful payments (%s sublessors) found no contract with "
            "balance covering the call date; recorded with contract_id NULL. CRM should add or "
            "extend contracts for them.",
            result.unallocated_amount,
            result.unallocated_payments,
            result.unallocated_sublessors,
        )
    log.info(
        "Income checked (%s) from payment %s up to %s; %s payments still pending",
        "full" if full else "incremental",
        lo,
        cursor,
        result.unsettled_watched,
    )
    return result


def _position(cur: Any, name: str) -> int:
    position = job_cursor.read(cur, name)
    return int(position.position_id or 0) if position else 0


def _save_marks(conn: Any, cursor: int, income_mark: int, full: bool) -> None:
    """Record what the passed check covered (own transaction)."""
    with transaction(conn) as cur:
        cur.execute(_SAVE_MARK, (CHECK_CURSOR_NAME, cursor, full, full))
        cur.execute(_SAVE_MARK, (CHECK_INCOME_MARK_NAME, income_mark, False, False))
