"""Charge every valid call exactly once: a two-phase state machine with recovery points.

Phase 1 (one transaction): every valid call without an order gets a ``pending``
row whose id is the order id; committed before any request is sent.
Phase 2: every ``pending`` row is sent to ``/trade/charge`` with its stored
order id and parameters; the answers are recorded in batches, each batch in one
transaction with the offline decisions it causes. A crash anywhere leaves rows
``pending``; the next pass sends the same order ids again and the payment
center answers with the first result (``duplicate``), so nothing is charged
twice and nothing is lost. See docs/payments.md.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sublessor_billing.payments import store
from sublessor_billing.payments.outcomes import (
    PENDING,
    SETTLED,
    SUCCESS,
    Outcome,
    PaymentClient,
    PaymentConfigurationError,
    PendingOrder,
    UnknownOutcome,
    check_order_ids,
    classify_charge,
    describe,
)
from sublessor_billing.payments.sweep import Sweep, sweep_unallocated

log = logging.getLogger(__name__)

# Test-only crash points: ``SUBLESSOR_BILLING_CRASH_AT=after_allocation`` (or
# ``after_answer``) SIGKILLs the process there, to prove the recovery argument.
CRASH_ENV = "SUBLESSOR_BILLING_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class ChargesPending(RuntimeError):
    """Some orders still have no known outcome; the next try settles them with the same order ids."""

    def __init__(self, report: ChargeReport) -> None:
        shown = "; ".join(f"order {oid}: {why}" for oid, why in report.pending_orders[:20])
        more = report.counts.get(PENDING, 0) - min(20, len(report.pending_orders))
        super().__init__(
            f"{report.counts.get(PENDING, 0)} charge(s) still pending in the payment log (outcome "
            f"unknown or not sent): {shown}{f'; and {more} more' if more > 0 else ''}. They keep "
            "their order ids and are settled by the next try or run; see docs/payments.md for a "
            "row that stays stuck."
        )
        self.report = report


class OrderIdsReused(RuntimeError):
    """The payment center answered 1004: an order id of ours was already used by someone else."""

    def __init__(self, rows: list[tuple[int, int]]) -> None:
        shown = ", ".join(f"order {oid} (sublessor {sub})" for oid, sub in rows[:20])
        super().__init__(
            f"The payment center refused {shown}{' and more' if len(rows) > 20 else ''} with 1004 "
            "(order id already used with different parameters); they are recorded as failed and "
            "their calls are NOT charged. Our ids and parameters are stored, so the ids were used "
            "before: check whether the database was restored or the payment log's AUTO_INCREMENT "
            "went back, and query each id (PaymentApiHook().query). Then set the AUTO_INCREMENT "
            "above every id ever sent and clear last_error of these rows (docs/payments.md)."
        )
        self.rows = rows


PENDING_IDS_SHOWN = 50


@dataclass
class ChargeReport:
    allocated: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    charged_fen: int = 0
    offline_decisions: int = 0
    pending_orders: list[tuple[int, str]] = field(default_factory=list)
    sweep: Sweep = field(default_factory=lambda: Sweep([], []))

    def as_dict(self) -> dict[str, Any]:
        return {
            "allocated": self.allocated,
            **self.sweep.as_dict(),  # both 0 in normal operation (docs/payments.md, "Sweep")
            **{status: self.counts.get(status, 0) for status in (*SETTLED, PENDING)},
            "charged_fen": self.charged_fen,
            "charged_yuan": str(Decimal(self.charged_fen) / 100),
            "offline_decisions": self.offline_decisions,
            # Bounded, so a payment center outage does not flood the log and XCom.
            "pending_order_ids": [oid for oid, _ in self.pending_orders[:PENDING_IDS_SHOWN]],
        }


def charge_valid_calls(
    conn: Any,
    client: PaymentClient,
    *,
    price_fen: int,
    workers: int = 32,
    batch_size: int = 500,
    flush_seconds: float = 0.25,
) -> ChargeReport:
    """Allocate orders for new valid calls, then settle every pending order; raise if any stays pending."""
    sweep = sweep_unallocated(conn, price_fen)  # what the high-water range cannot reach
    report = ChargeReport(allocated=len(sweep.found), sweep=sweep)
    report.allocated += store.allocate_orders(conn, price_fen)
    log.info("Allocated %s new order(s) at %s fen each", report.allocated, price_fen)
    crash_point("after_allocation")
    orders = store.load_pending(conn)
    check_order_ids([o.order_id for o in orders])  # before any request
    log.info("Settling %s pending order(s) with %s parallel request(s)", len(orders), workers)
    bad_signature = settle(
        conn, client, orders, report, price_fen=price_fen, workers=workers,
        batch_size=batch_size, flush_seconds=flush_seconds,
    )  # fmt: skip
    # The table, not this pass's bookkeeping, says whether anything is left.
    report.counts[PENDING], report.pending_orders = store.pending_orders(conn)
    log.info("Charging result: %s", report.as_dict())
    if bad_signature:
        raise PaymentConfigurationError(
            "The payment center refused our signature (code 1003): the app id (login) or app key "
            "(password) of the payment connection is wrong. Nothing was charged for the refused "
            f"orders; they stay pending: {[oid for oid, _ in report.pending_orders[:20]]}."
        )
    if report.counts.get(PENDING):
        raise ChargesPending(report)
    reused = store.unresolved_reused_orders(conn)
    if reused:
        raise OrderIdsReused(reused)
    return report


def settle(
    conn: Any,
    client: PaymentClient,
    orders: list[PendingOrder],
    report: ChargeReport,
    *,
    price_fen: int,
    workers: int,
    batch_size: int,
    flush_seconds: float,
) -> bool:
    """Send every order (sublessors in parallel, each sublessor's in order) and record answers.

    Returns True when the payment center refused our signature (the pass stops sending).
    """
    by_sublessor: dict[int, list[PendingOrder]] = defaultdict(list)
    for order in orders:
        by_sublessor[order.sublessor_id].append(order)
    answers: queue.Queue[Outcome | None] = queue.Queue()
    stop = threading.Event()

    def run_sublessor(queue_of_one: list[PendingOrder]) -> None:
        blocked_by: int | None = None
        for order in queue_of_one:
            if blocked_by is not None or stop.is_set():
                why = (
                    f"not sent: order {blocked_by} of the same sublessor has no known outcome yet"
                    if blocked_by is not None
                    else "not sent: the pass stopped on a configuration error"
                )
                answers.put(
                    Outcome(
                        order.order_id,
                        order.sublessor_id,
                        PENDING,
                        order.amount,
                        error=why,
                        sent=False,
                    )
                )
                continue
            try:
                outcome = charge_one(client, order)
            except Exception as exc:  # anything: the row stays pending with why, never lost
                log.exception("Charging order %s failed unexpectedly", order.order_id)
                outcome = Outcome(
                    order.order_id,
                    order.sublessor_id,
                    PENDING,
                    order.amount,
                    error=f"unexpected {type(exc).__name__}: {str(exc)[:400]}",
                )
            if outcome.bad_signature:
                stop.set()
            if outcome.status == PENDING:
                blocked_by = order.order_id  # keep the sublessor's order: wait for this one
            answers.put(outcome)

    def run_all() -> None:
        try:
            with ThreadPoolExecutor(
                max_workers=max(1, workers), thread_name_prefix="charge"
            ) as pool:
                for _ in pool.map(run_sublessor, by_sublessor.values()):
                    pass
        except Exception:  # the rows it did not report stay pending; the table check counts them
            log.exception("Charging dispatch stopped early")
        finally:
            answers.put(None)

    sender = threading.Thread(target=run_all, name="charge-dispatch", daemon=True)
    sender.start()
    decided: set[int] = set()
    batch: list[Outcome] = []
    last_flush = time.monotonic()
    first_answer = True
    while True:
        try:
            item = answers.get(timeout=flush_seconds)
        except queue.Empty:
            item = ...
        if isinstance(item, Outcome):
            if first_answer:
                first_answer = False
                crash_point("after_answer")
            batch.append(item)
        done = item is None
        if batch and (
            done or len(batch) >= batch_size or time.monotonic() - last_flush >= flush_seconds
        ):
            _flush(conn, batch, report, price_fen, decided)
            batch = []
            last_flush = time.monotonic()
        if done:
            break
    sender.join()
    return stop.is_set()


def charge_one(client: PaymentClient, order: PendingOrder) -> Outcome:
    try:
        body = client.charge(
            order_id=order.order_id,
            user_id=order.sublessor_id,
            amount=order.amount,
            subject=order.subject,
        )
    except UnknownOutcome as exc:
        return Outcome(
            order.order_id, order.sublessor_id, PENDING, order.amount, error=str(exc)[:512]
        )
    return classify_charge(order, body, describe(client, "/trade/charge"))


def _flush(
    conn: Any, batch: list[Outcome], report: ChargeReport, price_fen: int, decided: set[int]
) -> None:
    settled, decisions = store.record_outcomes(conn, batch, price_fen=price_fen, decided=decided)
    report.offline_decisions += decisions
    for o in settled:
        report.counts[o.status] += 1
        if o.status == SUCCESS:
            report.charged_fen += o.amount
