"""Prove that recognised income matches the successful payments up to the cursor.

Read in one consistent snapshot (the cursor, the income rows and the watch
table were committed together by each batch), set-based, so a check of the
whole history is a few index scans. A mismatch is an error naming payment ids;
money no contract could take is only reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sublessor_billing.accounting.recognise import CURSOR_NAME

log = logging.getLogger(__name__)

MAX_NAMED = 50  # offending payment ids named in the error

_CURSOR = "SELECT position_id FROM job_cursor WHERE name = %s"
# Per payment up to the cursor: success and not watched -> income adds up to the amount;
# anything else (non-success, or still watched) -> no income rows at all.
_PAYMENT_MISMATCHES = """
SELECT p.id, p.status, p.amount, i.total, IFNULL(i.n, 0)
FROM sublessor_call_payment_log_201409 p
LEFT JOIN (
  SELECT payment_id, SUM(amount) AS total, COUNT(*) AS n
  FROM sublessor_accounting_income_201409 GROUP BY payment_id
) i ON i.payment_id = p.id
LEFT JOIN accounting_unsettled_payment u ON u.payment_id = p.id
WHERE p.id <= %s
  AND CASE WHEN p.status = 'success' AND u.payment_id IS NULL
           THEN IFNULL(i.total, 0) <> p.amount
           ELSE i.n IS NOT NULL END
ORDER BY p.id LIMIT %s
"""
# Income rows that belong to no payment, or to one the cursor has not reached.
_STRAY_INCOME = """
SELECT i.payment_id, COUNT(*), SUM(i.amount)
FROM sublessor_accounting_income_201409 i
LEFT JOIN sublessor_call_payment_log_201409 p ON p.id = i.payment_id
WHERE p.id IS NULL OR i.payment_id > %s
GROUP BY i.payment_id ORDER BY i.payment_id LIMIT %s
"""
_UNALLOCATED = """
SELECT COUNT(*), COUNT(DISTINCT payment_id), IFNULL(SUM(amount), 0), COUNT(DISTINCT sublessor_id)
FROM sublessor_accounting_income_201409 WHERE contract_id IS NULL
"""
_WATCHED = "SELECT COUNT(*) FROM accounting_unsettled_payment"


class IncomeMismatchError(RuntimeError):
    """Recognised income does not add up to the successful payments."""


@dataclass
class IncomeCheck:
    cursor: int
    unallocated_rows: int
    unallocated_payments: int
    unallocated_amount: int  # fen
    unallocated_sublessors: int
    unsettled_watched: int
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "unallocated_rows": self.unallocated_rows,
            "unallocated_payments": self.unallocated_payments,
            "unallocated_amount_fen": self.unallocated_amount,
            "unallocated_sublessors": self.unallocated_sublessors,
            "unsettled_watched": self.unsettled_watched,
        }


def check_income(conn: Any) -> IncomeCheck:
    """Check everything up to the cursor; raise ``IncomeMismatchError`` naming the payments."""
    conn.rollback()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute(_CURSOR, (CURSOR_NAME,))
            row = cur.fetchone()
            cursor = int(row[0] or 0) if row else 0
            cur.execute(_PAYMENT_MISMATCHES, (cursor, MAX_NAMED))
            mismatches = cur.fetchall()
            cur.execute(_STRAY_INCOME, (cursor, MAX_NAMED))
            strays = cur.fetchall()
            cur.execute(_UNALLOCATED)
            rows, payments, amount, sublessors = cur.fetchone()
            cur.execute(_WATCHED)
            watched = cur.fetchone()[0]
    finally:
        conn.rollback()

    result = IncomeCheck(
        cursor, int(rows), int(payments), int(amount), int(sublessors), int(watched)
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
            f"Accounting income does not match the payments up to cursor {cursor}{more}: "
            + "; ".join(result.problems)
            + ". Do not rerun blindly: find how these rows were changed, correct them, then rerun check_income."
        )
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
        "Income checked up to payment %s; %s payments still pending",
        cursor,
        result.unsettled_watched,
    )
    return result
