"""Send the pending offline decisions to the listing service (idempotent by request_id).

A decision is recorded, kept current or superseded with the payment outcomes
(``decisions.record_decisions``); this step only delivers it. Each decision's
attempt is counted before its request goes out (a later charge that needs the
listings offline then gets a decision of its own). The requests go out together
(at most ``workers`` at a time) over the asynchronous client of ``payments.api``,
each bounded as a whole by its deadline (``payment_api_timeout``). A failure
leaves the decision ``pending`` with the error, and the next try sends the same
``request_id`` again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sublessor_billing.payments import decisions
from sublessor_billing.payments.api import event_loop
from sublessor_billing.payments.outcomes import ListingClient, UnknownOutcome, describe

log = logging.getLogger(__name__)

Event = tuple[int, str, int, str]  # (id, request_id, sublessor_id, reason)
Delivery = tuple[int | None, str | None]  # (listings taken offline, error): error None = done


class OfflinePending(RuntimeError):
    """Some offline decisions could not be delivered; the next try sends them again."""


@dataclass
class OfflineReport:
    sent: int = 0
    listings_offlined: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "listings_offlined": self.listings_offlined,
            "still_pending": len(self.failed),
            "pending_request_ids": [rid for rid, _ in self.failed],
        }


def send_offline_decisions(conn: Any, client: ListingClient, *, workers: int = 8) -> OfflineReport:
    """Deliver every pending decision; raise ``OfflinePending`` naming those that failed.

    ``client`` is unopened (``ListingApiHook(...).get_conn()``): it is opened
    here, in the event loop that sends. Whether a decision is still current was
    settled when the charges were recorded, so no price is needed here.
    """
    report = OfflineReport()
    events = decisions.load_pending(conn)
    if not events:
        return report
    log.info("Sending %s offline decision(s) to the listing service", len(events))
    decisions.mark_handed_over(conn, [event[0] for event in events])
    with event_loop() as loop:
        deliveries = loop.run(_deliver(client, events, workers))
    for (event_id, request_id, _, _), (offlined, error) in zip(events, deliveries, strict=True):
        decisions.record_delivery(conn, event_id, offlined=offlined, error=error)
        if error is None:
            report.sent += 1
            report.listings_offlined += offlined or 0
        else:
            report.failed.append((request_id, error))
    log.info("Offline result: %s", report.as_dict())
    if report.failed:
        shown = "; ".join(f"{rid}: {why}" for rid, why in report.failed[:20])
        raise OfflinePending(
            f"{len(report.failed)} offline decision(s) not delivered: {shown}. They stay pending "
            "and are sent again (same request_id) by the next try or run."
        )
    return report


async def _deliver(client: ListingClient, events: list[Event], workers: int) -> list[Delivery]:
    """One ``offline_all`` per decision, at most ``workers`` in flight; one result each, in order."""
    slots = asyncio.Semaphore(max(1, workers))
    where = describe(client, "/listing/offline_all")

    async def send(event: Event) -> Delivery:
        _, request_id, sublessor_id, reason = event
        async with slots:
            try:
                body = await client.offline_all(
                    user_id=sublessor_id, reason=reason, request_id=request_id
                )
            except UnknownOutcome as exc:
                return None, str(exc)
            except Exception as exc:  # a bug of ours: kept pending, named, the others delivered
                log.exception("Delivering offline decision %s failed unexpectedly", request_id)
                return None, f"unexpected {type(exc).__name__}: {str(exc)[:400]}"
        if not isinstance(body, dict) or body.get("code") != 0:
            return None, f"{where} answered {str(body)[:200]}"
        offlined = body.get("offlined")
        return (offlined if isinstance(offlined, int) else None), None

    async with client:
        return list(await asyncio.gather(*(send(event) for event in events)))
