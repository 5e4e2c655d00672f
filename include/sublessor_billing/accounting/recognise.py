"""Recognise accounting income: one transaction per batch of payments after the cursor.

Each batch (the phases below, in one transaction):
1. lock the cursor row ``job_cursor.accounting_income`` (two runs serialize here);
2. read the next payments after the cursor, ascending id, waiting for any
   in-flight insert below them (share lock, READ COMMITTED);
3. re-examine the payments that were pending when the cursor passed them; when
   a full page of them settled, the new payments wait (backlog drained first);
4. lock the sublessors' candidate contracts, allocate late and new payments
   together in ascending id (``allocation.allocate``),
   insert the income rows, lower the balances without touching ``updated_datetime``;
5. record newly passed pending payments, advance the cursor, commit.
A crash anywhere before the commit leaves nothing behind; the rerun redoes the batch.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sublessor_billing.accounting.allocation import Contract, SettledPayment, allocate
from sublessor_billing.accounting.counts import RecognitionCounts
from sublessor_billing.calls.store import call_id_for_display
from sublessor_billing.db import job_cursor
from sublessor_billing.db.sql import chunks, marks
from sublessor_billing.db.tables import CALL_LOG, CONTRACT, INCOME, PAYMENT_LOG, UNSETTLED_PAYMENT
from sublessor_billing.db.transaction import retry_on_lock_conflict, transaction
from sublessor_billing.payments.outcomes import PaymentStatus

log = logging.getLogger(__name__)

CURSOR_NAME = "accounting_income"
IN_CHUNK = 1000  # values per IN (...) list and contracts per balance UPDATE
# Deadlock / lock wait timeout: the batch's transaction() rolls all of it back (InnoDB itself
# undoes only the last statement on a lock wait timeout), so it is simply run again.
_LOCK_CONFLICT_ATTEMPTS = 3

FINAL_REFUSALS = frozenset({PaymentStatus.INSUFFICIENT, PaymentStatus.FAILED})
_KNOWN_STATUSES = FINAL_REFUSALS | {PaymentStatus.SUCCESS, PaymentStatus.PENDING}

_PAYMENT_COLUMNS = f"SELECT id, call_id, sublessor_id, amount, status FROM {PAYMENT_LOG}"
_NEXT_PAYMENTS = f"{_PAYMENT_COLUMNS} WHERE id > %s ORDER BY id LIMIT %s LOCK IN SHARE MODE"
_PAYMENTS_BY_ID = f"{_PAYMENT_COLUMNS} WHERE id IN ({{ids}}) ORDER BY id"
_WATCHED = (
    f"SELECT u.payment_id, p.status FROM {UNSETTLED_PAYMENT} u"
    f" LEFT JOIN {PAYMENT_LOG} p ON p.id = u.payment_id"
    # only what can leave the watch
    f" WHERE p.status IS NULL OR p.status <> '{PaymentStatus.PENDING}'"
    " ORDER BY u.payment_id LIMIT %s"
)
_WATCH = f"INSERT INTO {UNSETTLED_PAYMENT} (payment_id) VALUES (%s)"
_UNWATCH = f"DELETE FROM {UNSETTLED_PAYMENT} WHERE payment_id IN ({{ids}})"
_CALL_DATES = f"SELECT call_id, DATE(start_time) FROM {CALL_LOG} WHERE call_id IN ({{ids}})"
_CANDIDATE_CONTRACTS = (
    f"SELECT id, sublessor_id, balance, start_date, end_date, status FROM {CONTRACT}"
    " WHERE sublessor_id IN ({ids}) AND status = 1 AND balance > 0"
    " AND start_date <= %s AND end_date >= %s ORDER BY id FOR UPDATE"
)
_INSERT_INCOME = (
    f"INSERT INTO {INCOME}"
    " (payment_id, contract_id, sublessor_id, amount, call_date) VALUES (%s, %s, %s, %s, %s)"
)
# Lowering the balance is not a CRM edit: keep updated_datetime as it was.
_LOWER_BALANCES = (
    f"UPDATE {CONTRACT} SET balance = balance - CASE id {{cases}} END,"
    " updated_datetime = updated_datetime WHERE id IN ({ids})"
)


def ensure_cursor(conn: Any) -> None:
    """Create the cursor row at position 0 if it is missing (own, committed transaction)."""
    with transaction(conn) as cur:
        job_cursor.ensure(cur, CURSOR_NAME)


def recognise_batch(conn: Any, *, batch_size: int, in_chunk: int = IN_CHUNK) -> RecognitionCounts:
    """Run one batch in one transaction; the connection must hold no uncommitted work.

    Its statements take at most ``in_chunk`` ids (or contracts) each (default: production's).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ensure_cursor(conn)
    # Every read sees the latest committed rows, not a snapshot older than our locks.
    with transaction(conn, isolation="READ COMMITTED") as cur:
        return _batch(cur, batch_size, in_chunk)


def recognise_until_caught_up(
    conn: Any, *, batch_size: int, max_batches: int = 10_000, in_chunk: int = IN_CHUNK
) -> RecognitionCounts:
    """Run batches until one finds nothing to do (or ``max_batches`` ran); return the totals."""
    total = RecognitionCounts()
    for _ in range(max_batches):
        counts = retry_on_lock_conflict(
            lambda: recognise_batch(conn, batch_size=batch_size, in_chunk=in_chunk),
            attempts=_LOCK_CONFLICT_ATTEMPTS,
            what="Accounting income batch",
        )
        total.add(counts)
        log.info(
            "Batch done: cursor %s, %s payments, %s income rows, %s late-settled",
            counts.cursor,
            counts.payments_processed,
            counts.income_rows,
            counts.late_settled_recognised,
        )
        if not (
            counts.payments_processed
            or counts.late_settled_recognised
            or counts.late_settled_dropped
        ):
            break
    else:
        log.warning("Stopped after %s batches with payments still arriving", max_batches)
    return total


def _batch(cur: Any, batch_size: int, in_chunk: int) -> RecognitionCounts:
    counts = RecognitionCounts(batches=1)
    locked = job_cursor.lock(cur, CURSOR_NAME)
    position = int(locked.position_id or 0)

    # New payments are read BEFORE the watch: billing settles a sublessor's orders in id
    # order, so a new payment seen settled implies every older one of that sublessor
    # already settled in a commit the (later) watched read sees.
    cur.execute(_NEXT_PAYMENTS, (position, batch_size))
    new = [_payment_row(r) for r in cur.fetchall()]
    late_ids, dropped_ids, page_full = _examine_watched(cur, batch_size)
    if page_full:
        # A backlog of late settlements (e.g. after an outage): drain it, oldest first,
        # before any newer payment may draw on the same contracts.
        new = []
    late = _fetch_by_id(cur, late_ids, in_chunk)

    newly_pending = [p["id"] for p in new if p["status"] == PaymentStatus.PENDING]
    for p in new:
        if p["status"] not in _KNOWN_STATUSES:
            raise ValueError(
                f"payment {p['id']} has unknown status {p['status']!r}; the accounting cursor "
                "stops here until the payment log row is corrected"
            )
    to_allocate = sorted(
        (p for p in late + new if p["status"] == PaymentStatus.SUCCESS), key=lambda p: p["id"]
    )
    settled = _with_call_dates(cur, to_allocate, in_chunk)
    contracts = _lock_contracts(cur, settled, in_chunk)
    allocation = allocate(settled, contracts)

    if allocation.rows:
        cur.executemany(
            _INSERT_INCOME,
            [
                (r.payment_id, r.contract_id, r.sublessor_id, r.amount, r.call_date)
                for r in allocation.rows
            ],
        )
    _lower_balances(cur, allocation.received({c.id: c.balance for c in contracts}), in_chunk)
    if newly_pending:
        cur.executemany(_WATCH, [(pid,) for pid in newly_pending])
    _unwatch(cur, late_ids + dropped_ids, in_chunk)
    if new:
        position = new[-1]["id"]
        job_cursor.move_id(cur, CURSOR_NAME, position)

    counts.payments_processed = len(new)
    counts.income_rows = len(allocation.rows)
    counts.money_allocated = allocation.allocated
    counts.money_unallocated = allocation.unallocated
    counts.late_settled_recognised = len(late_ids)
    counts.late_settled_dropped = len(dropped_ids)
    counts.newly_unsettled = len(newly_pending)
    counts.cursor = position
    return counts


def _examine_watched(cur: Any, limit: int) -> tuple[list[int], list[int], bool]:
    """Split watched payments into now-successful and definitively refused (or gone).

    The third value says the page was full: more settled watched payments may wait.
    """
    cur.execute(_WATCHED, (limit,))
    rows = cur.fetchall()
    late, dropped = [], []
    for payment_id, status in rows:
        if status == PaymentStatus.SUCCESS:
            late.append(int(payment_id))
        elif status not in FINAL_REFUSALS and status is not None:
            raise ValueError(
                f"watched payment {payment_id} has unknown status {status!r}; the accounting "
                "cursor stops here until the payment log row is corrected"
            )
        else:
            if status is None:
                log.warning("Watched payment %s no longer exists; dropping it", payment_id)
            dropped.append(int(payment_id))
    return late, dropped, len(rows) >= limit


def _fetch_by_id(cur: Any, ids: list[int], in_chunk: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for chunk in chunks(ids, in_chunk):
        cur.execute(_PAYMENTS_BY_ID.format(ids=marks(chunk)), chunk)
        found.extend(_payment_row(r) for r in cur.fetchall())
    return found


def _payment_row(row: tuple) -> dict[str, Any]:
    pid, call_id, sublessor_id, amount, status = row
    return {
        "id": int(pid),
        "call_id": call_id,
        "sublessor_id": int(sublessor_id),
        "amount": int(amount),
        "status": status,
    }


def _with_call_dates(
    cur: Any, payments: list[dict[str, Any]], in_chunk: int
) -> list[SettledPayment]:
    """Attach the date of each payment's call (its ``start_time``, Asia/Shanghai)."""
    dates: dict[str, date] = {}
    for chunk in chunks([p["call_id"] for p in payments], in_chunk):
        cur.execute(_CALL_DATES.format(ids=marks(chunk)), chunk)
        dates.update(cur.fetchall())
    settled = []
    for p in payments:
        if p["call_id"] not in dates:
            raise LookupError(
                f"payment {p['id']} refers to call_id {call_id_for_display(p['call_id'])!r}, which is "
                f"not in {CALL_LOG}; income cannot be dated. Restore the row, then rerun."
            )
        settled.append(SettledPayment(p["id"], p["sublessor_id"], p["amount"], dates[p["call_id"]]))
    return settled


def _lock_contracts(cur: Any, payments: list[SettledPayment], in_chunk: int) -> list[Contract]:
    """Lock (FOR UPDATE) the contracts that could take these payments, then read their balances."""
    if not payments:
        return []
    first = min(p.call_date for p in payments)
    last = max(p.call_date for p in payments)
    contracts = []
    for chunk in chunks(sorted({p.sublessor_id for p in payments}), in_chunk):
        cur.execute(_CANDIDATE_CONTRACTS.format(ids=marks(chunk)), (*chunk, last, first))
        contracts.extend(Contract(*row) for row in cur.fetchall())
    return contracts


def _lower_balances(cur: Any, received: dict[int, int], in_chunk: int) -> None:
    for chunk in chunks(sorted(received.items()), in_chunk):
        cases = " ".join("WHEN %s THEN %s" for _ in chunk)
        params = [v for item in chunk for v in item] + [cid for cid, _ in chunk]
        cur.execute(_LOWER_BALANCES.format(cases=cases, ids=marks(chunk)), params)
        if cur.rowcount != len(chunk):
            raise RuntimeError(
                f"expected to lower the balance of {len(chunk)} contracts, changed {cur.rowcount}; "
                "rolled back, nothing recognised. Rerun; if it repeats, look for a contract deleted meanwhile."
            )


def _unwatch(cur: Any, ids: list[int], in_chunk: int) -> None:
    for chunk in chunks(ids, in_chunk):
        cur.execute(_UNWATCH.format(ids=marks(chunk)), chunk)
