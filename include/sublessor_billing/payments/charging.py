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
import enum
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sublessor_billing.payments import flags, orphans, store
from sublessor_billing.payments.allocation import allocate_orders
from sublessor_billing.payments.api import event_loop
from sublessor_billing.payments.outcomes import (
    ORDER_ID_MIN,
    OrderIdOutOfRange,
    PaymentClient,
    PaymentConfigurationError,
    PaymentStatus,
    PendingOrder,
    describe,
)
from sublessor_billing.payments.recorder import Recorder
from sublessor_billing.payments.results import (  # the errors: importable from here as before
    ChargeReport,
    ChargesPending,
    OrderIdsReused,
    UnallocatableCalls,
)
from sublessor_billing.payments.sending import (
    RETRY,
    RetryPolicy,
    send_in_order,
    send_within,
    together,
)

log = logging.getLogger(__name__)


def _no_phase(name: str) -> None:
    """Default ``on_phase``: tests inject a callback that crashes the process at a named phase."""


class SettleEnd(enum.Enum):
    """How ``settle`` ended. What is still pending is read from the table afterwards."""

    SENT = "sent"  # every order was sent (or the pass deadline stopped the sending)
    BAD_SIGNATURE = "bad signature"  # a 1003: our key is wrong, later orders were not sent


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
    on_phase("allocated")
    orders, report.held = _hold_out_of_range(store.load_pending(conn, shard))
    log.info(
        "Settling %s pending order(s) of %s, %s sublessor(s) at a time", len(orders), shard, workers
    )
    recorder = Recorder(conn, report, len(orders), price_fen, batch_size, flush_seconds, on_phase)
    with event_loop() as loop:
        ended = loop.run(
            settle(client, orders, recorder, workers=workers, retry=retry, deadline_s=left())
        )
    # The table, not this pass's bookkeeping, says whether anything is left.
    report.counts[PaymentStatus.PENDING], report.pending_orders = store.pending_orders(
        conn, min_id=ORDER_ID_MIN, shard=shard
    )
    log.info("Charging result: %s", report.as_dict())
    _raise_what_is_left(conn, client, report, ended, retry=retry, shard=shard)
    return report


def _raise_what_is_left(
    conn: Any,
    client: PaymentClient,
    report: ChargeReport,
    ended: SettleEnd,
    *,
    retry: RetryPolicy,
    shard: store.Shard,
) -> None:
    """Fail the pass for what it could not settle, the most urgent first; every order that
    could be settled was settled before."""
    if ended is SettleEnd.BAD_SIGNATURE:
        raise PaymentConfigurationError(
            "The payment center refused our signature (code 1003): the app id (login) or app key "
            "(password) of the payment connection is wrong. Nothing was charged for the refused "
            f"orders; they stay pending: {[oid for oid, _ in report.pending_orders[:20]]}."
        )
    if report.counts.get(PaymentStatus.PENDING):
        raise ChargesPending(report, attempts=retry.attempts, where=describe(client, ""))
    reused = store.unresolved_reused_orders(conn, shard=shard)
    if reused:
        raise OrderIdsReused(reused)
    if report.held:
        raise OrderIdOutOfRange(report.held, others_settled=True)
    orphaned = report.orphan_check
    if orphaned is not None and orphaned.found:  # at the end: every other call is charged first
        raise orphans.OrphanedCalls(orphaned)
    if report.allocation.unallocatable:  # at the end: every other call is charged first
        raise UnallocatableCalls(report.allocation)


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
#
#   pending --send--> answer proves a result --record--> success | insufficient | failed
#      ^                 |
#      +-- unknown ------+  (same order id, sent again at once up to retry.attempts; then it
#                           stays pending and that sublessor's later orders are not sent)
#   1003 (bad signature): stays pending, and no sublessor sends another order (SettleEnd).
async def settle(
    client: PaymentClient,
    orders: list[PendingOrder],
    recorder: Recorder,
    *,
    workers: int,
    retry: RetryPolicy,
    deadline_s: float | None = None,
) -> SettleEnd:
    """Send every order (sublessors in parallel, each one's in order) while ``recorder`` writes
    the answers in batches; until every order was sent or ``deadline_s`` passed."""
    by_sublessor: dict[int, list[PendingOrder]] = defaultdict(list)
    for order in orders:
        by_sublessor[order.sublessor_id].append(order)
    stop = asyncio.Event()  # set on a 1003: every later request would be refused too
    slots = asyncio.Semaphore(max(1, workers))

    async def sublessor(queue: list[PendingOrder]) -> None:
        async with slots:
            async for outcome in send_in_order(client, queue, retry, stop):
                recorder.add(outcome)

    senders = [sublessor(queue) for queue in by_sublessor.values()]
    async with client:
        await together(recorder.run(), send_within(deadline_s, senders, recorder.finish))
    return SettleEnd.BAD_SIGNATURE if stop.is_set() else SettleEnd.SENT
