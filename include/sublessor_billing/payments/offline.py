"""Send the pending offline decisions to the listing service (idempotent by request_id).

A decision is recorded, kept current or superseded with the payment outcomes
(``decisions.record_decisions``); this step only delivers it. Each decision's
attempt is counted before its request goes out (a later charge that needs the
listings offline then gets a decision of its own). A failure leaves the decision
``pending`` with the error, and the next try sends the same ``request_id`` again.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sublessor_billing.payments import decisions
from sublessor_billing.payments.outcomes import ListingClient, UnknownOutcome, describe

log = logging.getLogger(__name__)


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


def send_offline_decisions(
    conn: Any, client: ListingClient, *, price_fen: int | None = None, workers: int = 8
) -> OfflineReport:
    """Deliver every pending decision; raise ``OfflinePending`` naming those that failed.

    Whether a decision is still current was settled when the charges were
    recorded, at the price of that pass: ``price_fen`` is not needed here any
    more and is ignored (kept so that existing callers keep working).
    """
    report = OfflineReport()
    events = decisions.load_pending(conn)
    if not events:
        return report
    log.info("Sending %s offline decision(s) to the listing service", len(events))
    decisions.mark_handed_over(conn, [event[0] for event in events])

    def send(event: tuple[int, str, int, str]) -> tuple[int, str, int | None, str | None]:
        event_id, request_id, sublessor_id, reason = event
        try:
            body = client.offline_all(user_id=sublessor_id, reason=reason, request_id=request_id)
        except UnknownOutcome as exc:
            return event_id, request_id, None, str(exc)
        if not isinstance(body, dict) or body.get("code") != 0:
            where = describe(client, "/listing/offline_all")
            return event_id, request_id, None, f"{where} answered {str(body)[:200]}"
        offlined = body.get("offlined")
        return event_id, request_id, offlined if isinstance(offlined, int) else None, None

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="offline") as pool:
        for event_id, request_id, offlined, error in pool.map(send, events):
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
