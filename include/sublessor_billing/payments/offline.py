"""Send the pending offline decisions to the listing service (idempotent by request_id).

A decision is recorded, kept current or superseded with the payment outcomes
(``decisions.record_decisions``); this step only delivers it. Each decision is
*claimed* right before its request goes out (``decisions.claim``: its own
committed UPDATE counting the attempt, taken only while it is still pending, at
the attempt count read and without a live claim), so two passes at once never
send the same decision concurrently: the one that loses the claim skips it.
The claim lapses after one request's deadline plus ``CLAIM_MARGIN_S``; a pass
that died between claim and answer leaves it to a later pass, which claims it
again and sends the same ``request_id``. The requests go out together (at most
``workers`` at a time) over the asynchronous client of ``payments.api``, each
bounded as a whole by its deadline (``payment_api_timeout``); each answer is
recorded as it comes. A failure leaves the decision ``pending`` with the error
and releases the claim; the next try sends the same ``request_id`` again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sublessor_billing.payments import decisions
from sublessor_billing.payments.api import event_loop
from sublessor_billing.payments.decisions import Event
from sublessor_billing.payments.outcomes import ListingClient, UnknownOutcome, describe

if TYPE_CHECKING:
    from sublessor_billing.payments.store import Shard

log = logging.getLogger(__name__)

Delivery = tuple[int | None, str | None]  # (listings taken offline, error): error None = done
# Beyond one request's deadline: recording the answer, and a forward step of the DB clock
# (the lease is read against NOW(3)): a step larger than this makes a live claim look lapsed,
# and a second pass may send the same request_id while it is in flight: at worst the listings
# are taken offline twice, which is harmless (docs/payments.md, "Claims").
CLAIM_MARGIN_S = 300.0
SHOWN = 20  # ids named in a result or a log line, at most


class OfflinePending(RuntimeError):
    """Some offline decisions could not be delivered; the next try sends them again."""


@dataclass
class OfflineReport:
    sent: int = 0  # decisions delivered: sublessors taken offline by this pass
    listings_offlined: int = 0
    sublessors: list[int] = field(default_factory=list)  # the first SHOWN of them
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # the first SHOWN
    claimed_elsewhere: int = 0  # pending, held by another pass's live claim

    def delivered(self, sublessor_id: int, offlined: int | None) -> None:
        self.sent += 1
        self.listings_offlined += offlined or 0
        if len(self.sublessors) < SHOWN:
            self.sublessors.append(sublessor_id)

    def failed_with(self, request_id: str, error: str) -> None:
        self.failed += 1
        if len(self.failures) < SHOWN:
            self.failures.append((request_id, error))

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "listings_offlined": self.listings_offlined,
            "sublessors_offline": self.sublessors[:SHOWN],
            "still_pending": self.failed,
            "pending_request_ids": [rid for rid, _ in self.failures[:SHOWN]],
            "claimed_elsewhere": self.claimed_elsewhere,
        }


def claimant_name() -> str:
    """``host:pid:token``: who holds a claim, for a person reading the table."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]


def send_offline_decisions(
    conn: Any,
    client: ListingClient,
    *,
    workers: int = 8,
    lease_s: float | None = None,
    shard: Shard | None = None,
) -> OfflineReport:
    """Deliver every pending decision nobody else holds; raise ``OfflinePending`` naming failures.

    With ``shard``, only the decisions of its sublessors (``sublessor_id % count ==
    index``, as the charging pass of that shard): a decision is per sublessor and
    recorded by the pass that settled its charge, so the shard that charges a
    sublessor also delivers its decisions.

    ``client`` is unopened (``ListingApiHook(...).get_conn()``): it is opened
    here, in the event loop that sends. Whether a decision is still current was
    settled when the charges were recorded, so no price is needed here.
    ``lease_s``: how long a claim holds (default: the client's request deadline
    plus ``CLAIM_MARGIN_S``).
    """
    report = OfflineReport()
    events = decisions.load_pending(conn, shard)
    if events:
        if lease_s is None:
            lease_s = getattr(client, "timeout_ms", 20_000) / 1000 + CLAIM_MARGIN_S
        log.info("Sending up to %s offline decision(s) to the listing service", len(events))
        claimant = claimant_name()
        with event_loop() as loop:
            loop.run(_deliver(conn, client, events, workers, claimant, lease_s, report))
    report.claimed_elsewhere = decisions.claimed_elsewhere(conn, shard)
    log.info("Offline result: %s", report.as_dict())
    if report.claimed_elsewhere:
        log.warning(
            "%s pending offline decision(s) are claimed by another pass: it sends them, or, if "
            "it died, a later pass does once its claim lapses (same request_id).",
            report.claimed_elsewhere,
        )
    if report.failed:
        shown = "; ".join(f"{rid}: {why}" for rid, why in report.failures)
        more = report.failed - len(report.failures)
        raise OfflinePending(
            f"{report.failed} offline decision(s) not delivered: {shown}"
            f"{f'; and {more} more' if more > 0 else ''}. They stay pending and are sent again "
            "(same request_id) by the next try or run."
        )
    return report


async def _deliver(
    conn: Any,
    client: ListingClient,
    events: list[Event],
    workers: int,
    claimant: str,
    lease_s: float,
    report: OfflineReport,
) -> None:
    """Claim, send, record: one decision at a time per slot, at most ``workers`` in flight.

    The database is used by one step at a time (``db``): one connection, in a thread.
    """
    slots = asyncio.Semaphore(max(1, workers))
    db = asyncio.Lock()
    where = describe(client, "/listing/offline_all")

    async def one(event: Event) -> None:
        async with slots:
            async with db:
                if not await asyncio.to_thread(decisions.claim, conn, event, claimant, lease_s):
                    return  # another pass has it, or it was delivered / superseded meanwhile
            offlined, error = await _send(client, event, where)
            async with db:
                await asyncio.to_thread(
                    decisions.record_delivery, conn, event.id, claimant,
                    offlined=offlined, error=error,
                )  # fmt: skip
        if error is None:
            report.delivered(event.sublessor_id, offlined)
        else:
            report.failed_with(event.request_id, error)

    async with client:
        await asyncio.gather(*(one(event) for event in events))


async def _send(client: ListingClient, event: Event, where: str) -> Delivery:
    """One ``offline_all``; (listings taken offline, None) or (None, why it failed)."""
    try:
        body = await client.offline_all(
            user_id=event.sublessor_id, reason=event.reason, request_id=event.request_id
        )
    except UnknownOutcome as exc:
        return None, str(exc)
    except Exception as exc:  # a bug of ours: kept pending, named, the others delivered
        log.exception("Delivering offline decision %s failed unexpectedly", event.request_id)
        return None, f"unexpected {type(exc).__name__}: {str(exc)[:400]}"
    if not isinstance(body, dict) or body.get("code") != 0:
        return None, f"{where} answered {str(body)[:200]}"
    offlined = body.get("offlined")
    return (offlined if isinstance(offlined, int) else None), None
