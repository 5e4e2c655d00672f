"""Phase 2, the sending side: pending orders -> outcomes, over HTTP only (no database).

Each sublessor's orders are sent one after another; an unknown outcome
(deadline, 5xx, reset, garbage, undocumented code) is sent again at once with
the SAME order id and parameters after a short bounded backoff (``RETRY``),
which the payment center's idempotency makes safe; what is still unknown
after that stays pending, and that sublessor's later orders are not sent.
``charging.settle`` records the outcomes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from typing import Any

from sublessor_billing.payments.outcomes import (
    Outcome,
    PaymentClient,
    PaymentStatus,
    PendingOrder,
    UnknownOutcome,
    classify_charge,
    describe,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How an unknown outcome is retried inside the pass: same order id and parameters, at once."""

    attempts: int = 4  # requests per order and pass, the first included
    first_delay_s: float = 0.2  # then doubling ...
    max_delay_s: float = 1.0  # ... up to this

    def delays(self) -> Iterator[float]:
        """The pauses before the 2nd, 3rd, ... request (``attempts - 1`` of them)."""
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield min(delay, self.max_delay_s)
            delay *= 2


RETRY = RetryPolicy()  # hand-rolled on purpose: tenacity costs ~50 us per call on the hot path


async def send_in_order(
    client: PaymentClient, orders: list[PendingOrder], retry: RetryPolicy, stop: asyncio.Event
) -> AsyncIterator[Outcome]:
    """One sublessor's orders, one after another: one outcome each, the rest unsent after an unknown one.

    A later call must not take the money an earlier one should have taken, so a
    sublessor's orders wait behind one whose outcome is unknown.
    """
    where = describe(client, "/trade/charge")
    for position, order in enumerate(orders):
        if stop.is_set():
            for rest in orders[position:]:
                yield _not_sent(rest, "not sent: the pass stopped on a configuration error")
            return
        outcome = await charge_until_known(client, order, retry, where)
        if outcome.bad_signature:
            stop.set()
        yield outcome
        if outcome.status == PaymentStatus.PENDING:
            for rest in orders[position + 1 :]:
                why = f"not sent: order {order.order_id} of the same sublessor has no known outcome yet"
                yield _not_sent(rest, why)
            return


async def charge_until_known(
    client: PaymentClient, order: PendingOrder, retry: RetryPolicy, where: str
) -> Outcome:
    """Send one order; an unknown outcome is sent again (same order id) after each backoff delay."""
    delays = retry.delays()
    attempts = 0
    while True:
        attempts += 1
        try:
            body = await client.charge(
                order_id=order.order_id,
                user_id=order.sublessor_id,
                amount=order.amount,
                subject=order.subject,
            )
            outcome = classify_charge(order, body, where)
        except UnknownOutcome as exc:
            outcome = Outcome(
                order.order_id,
                order.sublessor_id,
                PaymentStatus.PENDING,
                order.amount,
                error=str(exc)[:512],
            )
        except Exception as exc:  # a bug of ours, not a transient fault: pending, no retry
            log.exception("Charging order %s failed unexpectedly", order.order_id)
            error = f"unexpected {type(exc).__name__}: {str(exc)[:400]}"
            return Outcome(
                order.order_id, order.sublessor_id, PaymentStatus.PENDING, order.amount, error=error,
                attempts=attempts,
            )  # fmt: skip
        delay = next(delays, None)
        if outcome.status != PaymentStatus.PENDING or outcome.bad_signature or delay is None:
            return outcome if attempts == 1 else replace(outcome, attempts=attempts)
        log.debug("Order %s: %s; sending it again in %s s", order.order_id, outcome.error, delay)
        await asyncio.sleep(delay)


def _not_sent(order: PendingOrder, why: str) -> Outcome:
    return Outcome(
        order.order_id,
        order.sublessor_id,
        PaymentStatus.PENDING,
        order.amount,
        error=why,
        attempts=0,
    )


async def send_within(
    deadline_s: float | None, senders: list[Coroutine[Any, Any, None]], done: Callable[[], None]
) -> None:
    """Run ``senders`` together until they end or ``deadline_s`` passes, then call ``done``.

    At the deadline the senders are cancelled: requests in flight are abandoned
    (unknown: their rows stay pending with their order ids) and no order is
    started any more. ``done`` tells the recorder that no more answers come, so it
    writes what it received and ends; the pass then raises ``ChargesPending``.
    """
    try:
        async with asyncio.timeout(deadline_s), asyncio.TaskGroup() as group:
            for sender in senders:
                group.create_task(sender)
    except TimeoutError:
        log.warning(
            "The pass deadline of %s s passed: no more orders are sent in this pass; what was "
            "answered is recorded, the rest stays pending for the next try",
            deadline_s,
        )
    except BaseExceptionGroup as failed:
        _log_others(failed)
        raise failed.exceptions[0] from None
    finally:
        done()


async def together(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run ``jobs`` concurrently; the first error cancels the others and is raised as it is."""
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as failed:
        _log_others(failed)
        raise failed.exceptions[0] from None


def _log_others(failed: BaseExceptionGroup) -> None:
    """The first error of a group is raised; log the others so that none is lost."""
    for error in failed.exceptions[1:]:
        log.error("Also failed in this pass: %r", error, exc_info=error)
