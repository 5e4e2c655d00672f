"""Send the pending offline decisions to the listing service (idempotent by request_id).

A decision is recorded with its payment outcome (see ``store.record_outcomes``);
this step only delivers it. A failure leaves the decision ``pending`` with the
error, and the next try sends the same ``request_id`` again.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sublessor_billing.payments import store
from sublessor_billing.payments.outcomes import ListingClient, UnknownOutcome, describe

log = logging.getLogger(__name__)


class OfflinePending(RuntimeError):
    """Some offline decisions could not be delivered; the next try sends them again."""


@dataclass
class OfflineReport:
    sent: int = 0
    listings_offlined: int = 0
    superseded: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "listings_offlined": self.listings_offlined,
            "superseded": self.superseded,
            "still_pending": len(self.failed),
            "pending_request_ids": [rid for rid, _ in self.failed],
        }


def send_offline_decisions(
    conn: Any, client: ListingClient, *, price_fen: int, workers: int = 8
) -> OfflineReport:
    """Deliver every pending decision still current; raise ``OfflinePending`` naming those that failed.

    A decision whose sublessor was charged successfully afterwards with at
    least ``price_fen`` left (topped up meanwhile) is marked ``superseded`` and
    not sent: the listings must stay online.
    """
    report = OfflineReport(superseded=store.supersede_stale_offline(conn, price_fen))
    if report.superseded:
        log.info("%s offline decision(s) superseded by a later top-up, not sent", report.superseded)
    events = store.load_pending_offline(conn)
    if not events:
        return report
    log.info("Sending %s offline decision(s) to the listing service", len(events))

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
            store.record_offline(conn, event_id, offlined=offlined, error=error)
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
