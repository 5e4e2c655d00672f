"""Charge every valid call exactly once: a two-phase state machine with recovery points.

Phase 1 (``allocation.allocate_orders``, bounded transactions under the judge
lock): every valid call without an order gets a ``pending`` row whose id is the
order id; committed before any request is sent. Before it, a few seconds of
flagging the calls charged before migration 080 (``flags.flag_history``, until
that is done), once a day any call with an order still unflagged
(``flags.daily_check``), and a bounded part of the hourly check for recent calls
flagged without their order (``orphans.check_orphans``: found, never reset).
Phase 2: every ``pending`` row is sent to ``/trade/charge`` with its stored
order id and parameters; an unknown outcome is sent again at once (same order
id, short bounded backoff); the answers are recorded in batches while requests
are in flight, each batch in one transaction with the offline decisions it
causes. A crash anywhere leaves rows ``pending``; the next pass sends the same
order ids again and the payment center answers with the first result
(``duplicate``), so nothing is charged twice and nothing is lost. See docs/payments.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sublessor_billing.payments import flags, orphans, store
from sublessor_billing.payments.allocation import Allocation, allocate_orders
from sublessor_billing.payments.api import event_loop
from sublessor_billing.payments.outcomes import (
    ORDER_ID_MIN,
    PENDING,
    SETTLED,
    OrderIdOutOfRange,
    PaymentClient,
    PaymentConfigurationError,
    PendingOrder,
    describe,
)
from sublessor_billing.payments.recorder import Recorder
from sublessor_billing.payments.sending import (
    RETRY,
    RetryPolicy,
    send_in_order,
    send_within,
    together,
)
from sublessor_billing.payments.sweep import UNFIT_WHY

log = logging.getLogger(__name__)


def _no_phase(name: str) -> None:
    """Default ``on_phase``: tests inject a callback that crashes the process at a named phase."""


class ChargesPending(RuntimeError):
    """Orders still without a known outcome after the in-task retries; a person should look."""

    def __init__(self, report: ChargeReport, *, attempts: int, where: str) -> None:
        total = report.counts.get(PENDING, 0)
        shown = "; ".join(f"order {oid}: {why}" for oid, why in report.pending_orders[:20])
        more = total - min(20, len(report.pending_orders))
        super().__init__(
            f"{total} charge(s) still pending after up to {attempts} attempt(s) each in this try "
            f"(outcome unknown, or not sent behind an order of the same sublessor whose outcome is "
            f"unknown): {shown}{f'; and {more} more' if more > 0 else ''}. Nothing is lost and "
            "nothing can be charged twice: they keep their order ids. To do: check that the payment "
            f"center ({where}) answers and that Variable payment_api_timeout is long enough ('unexpected "
            "<Error>' is a bug: see the task log); Airflow retries this task and the next run re-sends "
            "the same order ids (always safe: clear the task once the payment center answers). A row "
            "that stays stuck: docs/payments.md."
            + (
                f" Also held back, never sent: {len(report.held)} order id(s) below {ORDER_ID_MIN} "
                f"({', '.join(map(str, report.held[:20]))}): see OrderIdOutOfRange in the task log."
                if report.held
                else ""
            )
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


class UnallocatableCalls(RuntimeError):
    """Valid calls that cannot be given an order; every other call of the pass was charged."""

    def __init__(self, allocation: Allocation) -> None:
        shown = ", ".join(
            f"id {row_id} (call_id {call_id!r})" for row_id, call_id in allocation.unfit
        )
        more = allocation.unallocatable - len(allocation.unfit)
        super().__init__(
            f"{allocation.unallocatable} valid call(s) of {store.CALL_LOG} cannot be given an "
            f"order ({UNFIT_WHY}), so they are not charged: {shown}"
            f"{f'; and {more} more' if more > 0 else ''}. Every other call was charged. Repair "
            "each row (the next pass charges it), or write it off, never to be charged: UPDATE "
            f"{store.CALL_LOG} c SET c.order_allocated = 2 WHERE c.id = <id> AND c.filter_rule = 1 "
            f"AND c.order_allocated = 0 AND NOT EXISTS (SELECT 1 FROM {store.PAYMENT_LOG} p WHERE "
            "p.call_id = c.call_id) (docs/payments.md, 'A call that cannot be stored')."
        )
        self.allocation = allocation


PENDING_IDS_SHOWN = 50
OFFLINE_SHOWN = 20  # sublessors named in the result, at most


@dataclass
class ChargeReport:
    allocation: Allocation = field(default_factory=Allocation)
    history_flagged: int = 0  # calls charged before migration 080, flagged by this pass
    flagged_by_check: int | None = None  # the daily check's count (None: it did not run)
    orphan_check: orphans.Orphans | None = None  # calls at 1 without an order (None: not run)
    counts: Counter[str] = field(default_factory=Counter)
    charged_fen: int = 0
    offline_decisions: int = 0
    offline_sublessors: list[int] = field(default_factory=list)  # the first OFFLINE_SHOWN
    retried: int = 0  # orders that needed more than one request in this pass
    pending_orders: list[tuple[int, str]] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # pending ids below ORDER_ID_MIN, never sent

    def decided(self, sublessors: list[int]) -> None:
        """Count new offline decisions; keep the first ``OFFLINE_SHOWN`` sublessors to name."""
        self.offline_decisions += len(sublessors)
        room = OFFLINE_SHOWN - len(self.offline_sublessors)
        self.offline_sublessors.extend(sublessors[: max(0, room)])

    def as_dict(self) -> dict[str, Any]:
        return {
            # found_by_sweep and unallocatable_calls: 0 in normal operation (docs/payments.md)
            **self.allocation.as_dict(),
            "history_flagged": self.history_flagged,
            "flagged_by_check": self.flagged_by_check,
            "orphans_found": None if self.orphan_check is None else self.orphan_check.found,
            "orphan_call_ids": list(self.orphan_check.call_ids) if self.orphan_check else [],
            **{status: self.counts.get(status, 0) for status in (*SETTLED, PENDING)},
            "charged_fen": self.charged_fen,
            "charged_yuan": str(Decimal(self.charged_fen) / 100),
            "offline_decisions": self.offline_decisions,
            # Bounded like the ids below: a pass that takes thousands offline names 20.
            "offline_sublessors": self.offline_sublessors[:OFFLINE_SHOWN],
            "retried": self.retried,
            # Bounded, so a payment center outage does not flood the log and XCom.
            "pending_order_ids": [oid for oid, _ in self.pending_orders[:PENDING_IDS_SHOWN]],
            "held_out_of_range": len(self.held),
        }


def charge_valid_calls(
    conn: Any,
    client: PaymentClient,
    *,
    price_fen: int,
    workers: int = 64,
    batch_size: int = 500,
    flush_seconds: float = 0.25,
    retry: RetryPolicy = RETRY,
    on_phase: Callable[[str], None] = _no_phase,
    deadline_s: float | None = None,
    shard: store.Shard = store.ALL,
    allocate: bool = True,
) -> ChargeReport:
    """Allocate orders for new valid calls, then settle every pending order; raise if any stays pending.

    Pending ids below ORDER_ID_MIN are held back (never sent) while every other
    order is settled; the pass then raises ``OrderIdOutOfRange`` naming them. Valid
    calls that cannot be given an order: the pass ends with ``UnallocatableCalls``.
    With ``shard``, only the orders of its sublessors are settled (and checked
    at the end); every shard allocates all new calls first (idempotent), so
    passes of different shards may run at the same time. ``allocate=False``: settle
    only (``allocate_new_orders`` ran before, e.g. in the task that starts the shards).

    ``deadline_s`` bounds the pass from this call on: the judge lock is waited for
    no longer than what is left of it, and the sending gets the rest
    (``sending.send_within``; None: unbounded).
    ``on_phase(name)`` is called at the recovery points ("allocated", "first_answer"
    received but not recorded, "batch_recorded"): the crash tests inject a kill there.
    """
    started = time.monotonic()

    def left() -> float | None:
        return None if deadline_s is None else max(0.0, deadline_s - (time.monotonic() - started))

    report = allocate_new_orders(conn, price_fen, deadline_s) if allocate else ChargeReport()
    allocation, orphaned = report.allocation, report.orphan_check
    on_phase("allocated")
    orders, report.held = _hold_out_of_range(store.load_pending(conn, shard))
    log.info(
        "Settling %s pending order(s) of %s, %s sublessor(s) at a time", len(orders), shard, workers
    )
    recorder = Recorder(conn, report, len(orders), price_fen, batch_size, flush_seconds, on_phase)
    with event_loop() as loop:
        bad_signature = loop.run(
            settle(client, orders, recorder, workers=workers, retry=retry, deadline_s=left())
        )
    # The table, not this pass's bookkeeping, says whether anything is left.
    report.counts[PENDING], report.pending_orders = store.pending_orders(
        conn, min_id=ORDER_ID_MIN, shard=shard
    )
    log.info("Charging result: %s", report.as_dict())
    if bad_signature:
        raise PaymentConfigurationError(
            "The payment center refused our signature (code 1003): the app id (login) or app key "
            "(password) of the payment connection is wrong. Nothing was charged for the refused "
            f"orders; they stay pending: {[oid for oid, _ in report.pending_orders[:20]]}."
        )
    if report.counts.get(PENDING):
        raise ChargesPending(report, attempts=retry.attempts, where=describe(client, ""))
    reused = store.unresolved_reused_orders(conn, shard=shard)
    if reused:
        raise OrderIdsReused(reused)
    if report.held:
        raise OrderIdOutOfRange(report.held, others_settled=True)
    if orphaned is not None and orphaned.found:  # at the end: every other call is charged first
        raise orphans.OrphanedCalls(orphaned)
    if allocation.unallocatable:  # at the end: every other call is charged first
        raise UnallocatableCalls(allocation)
    return report


def allocate_new_orders(conn: Any, price_fen: int, deadline_s: float | None = None) -> ChargeReport:
    """Phase 1 and what precedes it (history flags, daily check, orphans); the report of it:
    unallocatable calls and orphans counted, not raised. The judge lock is waited for no
    longer than what is left of ``deadline_s`` (None: 300 s)."""
    started = time.monotonic()
    history = flags.flag_history(conn)  # a few seconds, until the history is flagged
    checked = flags.daily_check(conn)
    orphaned = orphans.check_orphans(conn)  # names them; charging fails at the end of its pass
    wait = None if deadline_s is None else max(0.0, deadline_s - (time.monotonic() - started))
    lock_timeout = 300 if wait is None else max(1, int(min(300.0, wait)))
    allocation = allocate_orders(conn, price_fen, lock_timeout=lock_timeout)  # sweep included
    log.info("Allocated %s new order(s) at %s fen each", allocation.allocated, price_fen)
    return ChargeReport(allocation, history.flagged, checked, orphaned)


def _hold_out_of_range(orders: list[PendingOrder]) -> tuple[list[PendingOrder], list[int]]:
    """Split off the orders whose id is below ORDER_ID_MIN: never sent, reported, the rest charged.

    Not even that sublessor's later orders wait behind them: the fix gives their
    calls new (higher) order ids, so they are charged after those anyway.
    """
    held = sorted(o.order_id for o in orders if o.order_id < ORDER_ID_MIN)
    if held:
        log.error(
            "Holding back %s pending order id(s) below %s, never sent (the task fails at the end "
            "of this pass; every other order is charged): %s",
            len(held), ORDER_ID_MIN, held[:20],
        )  # fmt: skip
    return [o for o in orders if o.order_id >= ORDER_ID_MIN], held


# -- phase 2: pending -> settled ---------------------------------------------------------
async def settle(
    client: PaymentClient,
    orders: list[PendingOrder],
    recorder: Recorder,
    *,
    workers: int,
    retry: RetryPolicy,
    deadline_s: float | None = None,
) -> bool:
    """Send every order (sublessors in parallel, each one's in order) while ``recorder`` writes answers.

    Returns True when the payment center refused our signature (nothing more was sent).
    """
    by_sublessor: dict[int, list[PendingOrder]] = defaultdict(list)
    for order in orders:
        by_sublessor[order.sublessor_id].append(order)
    stop = asyncio.Event()  # a 1003: our key is wrong, every later request would be refused
    slots = asyncio.Semaphore(max(1, workers))

    async def sublessor(queue: list[PendingOrder]) -> None:
        async with slots:
            async for outcome in send_in_order(client, queue, retry, stop):
                recorder.add(outcome)

    senders = [sublessor(q) for q in by_sublessor.values()]
    async with client:
        await together(recorder.run(), send_within(deadline_s, senders, recorder.finish))
    return stop.is_set()
