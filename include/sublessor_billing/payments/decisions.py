"""Offline decisions: recorded with the answers that cause them, handed over, delivered.

Invariant: take a sublessor's latest settled charge that says something about
its account (1001, 1002, or a success with its balance: ``outcomes.offline_signal``).

* It was refused, or left less than one call's price: an ``offline_all`` request
  reaches the listing service after that charge. Right after the batch that
  recorded it, the sublessor has exactly one pending decision, never handed to
  the service yet; the next offline try sends it (and retries it until done).
* It left at least one call's price: nothing of the sublessor is pending.

Per batch and sublessor only the latest such charge ``L`` counts:

* a pending decision older than a charge of this batch that left at least one
  call's price is stale: ``superseded``, never sent;
* a pending decision already handed over (``attempts > 0``, counted by the
  claim committed before the request, see ``claim``) may have been acted on, and the service answers its ``request_id``
  again without acting: when ``L`` needs the listings offline, it is
  ``superseded`` by a new decision for ``L`` (a new ``request_id``);
* a pending decision never handed over is kept: sent later, it is sent after ``L``;
* when ``L`` needs the listings offline and nothing is left pending, a decision
  is recorded for the charge that began the dry spell in this batch (the first
  one after the batch's last charge that left enough, often ``L`` itself):
  ``request_id = sublessor-offline-<that order id>``, so the same answers give
  the same decision however they were batched within a pass.

So a dry spell costs one request per offline try at most, a top-up cancels what
was not sent, and no request the service may have seen is counted on twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import OFFLINE_EVENT
from sublessor_billing.db.transaction import transaction
from sublessor_billing.payments.outcomes import (
    Outcome,
    offline_reason,
    offline_request_id,
    offline_signal,
)

if TYPE_CHECKING:
    from sublessor_billing.payments.store import Shard


class Event(NamedTuple):
    """A pending decision as read before claiming it."""

    id: int
    request_id: str
    sublessor_id: int
    reason: str
    attempts: int


# Both statements read a sublessor's pending decisions through
# idx_sublessor_status (sublessor_id, status, trigger_order_id), migration 080.
_SUPERSEDE = f"""
UPDATE {OFFLINE_EVENT} o JOIN ({{rows}}) v ON o.sublessor_id = v.sublessor_id
SET o.status = 'superseded', o.done_at = NOW(3),
    o.last_error = IF(o.trigger_order_id < v.funded_id, v.stale, v.replaced)
WHERE o.status = 'pending' AND o.trigger_order_id < v.order_id
  AND (o.trigger_order_id < v.funded_id OR o.attempts > 0)
"""
_SUPERSEDE_ROW = (
    "SELECT %s AS sublessor_id, %s AS order_id, %s AS funded_id, %s AS stale, %s AS replaced"
)
_DECIDE = f"""
INSERT IGNORE INTO {OFFLINE_EVENT} (request_id, sublessor_id, trigger_order_id, reason)
SELECT v.request_id, v.sublessor_id, v.order_id, v.reason FROM ({{rows}}) v
WHERE NOT EXISTS (
  SELECT 1 FROM {OFFLINE_EVENT} o WHERE o.sublessor_id = v.sublessor_id AND o.status = 'pending'
)
"""
_DECIDE_ROW = "SELECT %s AS request_id, %s AS sublessor_id, %s AS order_id, %s AS reason"


def _union(template: str, rows: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    params = [value for row in rows for value in row]
    return " UNION ALL ".join([template] * len(rows)), params


def record_decisions(cur: Any, settled: Iterable[Outcome], price_fen: int) -> list[int]:
    """Apply the rules above for one batch of settled answers (inside its transaction).

    Returns the sublessors that got a new decision.
    """
    latest: dict[int, Outcome] = {}
    funded: dict[int, int] = {}  # sublessor -> latest order of the batch that left enough
    dry_from: dict[int, Outcome] = {}  # sublessor -> first dry charge after that one
    for o in sorted(settled, key=lambda o: o.order_id):
        signal = offline_signal(o, price_fen)
        if signal is None:
            continue
        latest[o.sublessor_id] = o
        if signal:
            dry_from.setdefault(o.sublessor_id, o)
        else:
            funded[o.sublessor_id] = o.order_id
            dry_from.pop(o.sublessor_id, None)
    if not latest:
        return []
    supersede = [
        (
            sub,
            o.order_id,
            funded.get(sub, 0),
            f"superseded, not sent: order {funded.get(sub, 0)} left at least one call's "
            f"price ({price_fen} fen)",
            f"superseded by a decision for order {o.order_id} or earlier: the listing service "
            "may have acted on this request_id already",
        )
        for sub, o in latest.items()
    ]
    sql, params = _union(_SUPERSEDE_ROW, supersede)
    cur.execute(_SUPERSEDE.format(rows=sql), params)
    # the decision names the charge that started the dry spell within this batch
    dry = list(dry_from.values())
    if not dry:
        return []
    sql, params = _union(
        _DECIDE_ROW,
        [
            (offline_request_id(o.order_id), o.sublessor_id, o.order_id, offline_reason(o))
            for o in dry
        ],
    )
    cur.execute(_DECIDE.format(rows=sql), params)
    cur.execute(
        f"SELECT sublessor_id FROM {OFFLINE_EVENT} WHERE trigger_order_id IN ({marks(dry)})",
        [o.order_id for o in dry],
    )
    return sorted(int(r[0]) for r in cur.fetchall())


def _shard_params(shard: Shard | None) -> tuple[int, int]:
    """``(count, index)`` for ``MOD(sublessor_id, count) = index`` (None: every sublessor)."""
    return (1, 0) if shard is None else shard.params


def load_pending(conn: Any, shard: Shard | None = None) -> list[Event]:
    """Every decision of ``shard``'s sublessors (None: all) not yet delivered and not claimed
    by a live lease, oldest first."""
    with transaction(conn) as cur:
        cur.execute(
            f"SELECT id, request_id, sublessor_id, reason, attempts FROM {OFFLINE_EVENT} "
            "WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < NOW(3)) "
            "AND MOD(sublessor_id, %s) = %s ORDER BY id",
            _shard_params(shard),
        )
        rows = cur.fetchall()
    return [Event(int(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4])) for r in rows]


def claimed_elsewhere(conn: Any, shard: Shard | None = None) -> int:
    """How many pending decisions of ``shard`` (None: all) another pass holds a live claim on."""
    with transaction(conn) as cur:
        cur.execute(
            f"SELECT COUNT(*) FROM {OFFLINE_EVENT} WHERE status = 'pending' AND claimed_until >= NOW(3) "
            "AND MOD(sublessor_id, %s) = %s",
            _shard_params(shard),
        )
        (count,) = cur.fetchone()
    return int(count)


def claim(conn: Any, event: Event, claimant: str, lease_s: float) -> bool:
    """Claim one decision before its request goes out: its own committed UPDATE.

    Counts the attempt and marks ``claimant`` until ``lease_s`` from now, only
    while the decision is still pending, at the attempt count read with it (no
    other pass claimed it since) and without a live claim. False: someone else
    has it, or it was delivered or superseded meanwhile; do not send it.
    """
    with transaction(conn) as cur:
        claimed = cur.execute(
            f"UPDATE {OFFLINE_EVENT} SET attempts = attempts + 1, attempted_at = NOW(3), claimed_by = %s, "
            "claimed_until = NOW(3) + INTERVAL %s MICROSECOND "
            "WHERE id = %s AND status = 'pending' AND attempts = %s "
            "AND (claimed_until IS NULL OR claimed_until < NOW(3))",
            (claimant[:64], int(lease_s * 1_000_000), event.id, event.attempts),
        )
    return claimed == 1


def record_delivery(
    conn: Any, event_id: int, claimant: str, *, offlined: int | None, error: str | None
) -> None:
    """Mark one decision done (``error`` None) or release its claim with why it failed.

    Done is recorded whoever holds the claim now (the service acted on the
    request_id); a failure only releases a claim that is still this one's.
    """
    with transaction(conn) as cur:
        if error is None:
            cur.execute(
                f"UPDATE {OFFLINE_EVENT} SET status = 'done', offlined = %s, last_error = NULL, "
                "done_at = NOW(3), claimed_by = NULL, claimed_until = NULL "
                "WHERE id = %s AND status = 'pending'",
                (offlined, event_id),
            )
        else:
            cur.execute(
                f"UPDATE {OFFLINE_EVENT} SET last_error = %s, claimed_by = NULL, claimed_until = NULL "
                "WHERE id = %s AND status = 'pending' AND claimed_by = %s",
                (error[:512], event_id, claimant[:64]),
            )
