"""Drain the 400 call queue into the call log in micro-batches.

Ordering that makes a crash harmless: a batch is written (valid calls with
INSERT IGNORE on the unique call_id, invalid ones into the quarantine) and
committed, and only then acknowledged with one ``multiple=True`` ack. A crash
before the commit leaves the messages unacknowledged, so RabbitMQ redelivers
them; a crash between commit and ack redelivers messages whose rows exist, and
the unique keys absorb them. Nothing is lost and nothing is logged twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sublessor_billing.calls.message import (
    Call,
    Invalid,
    body_sha256,
    intake_clock,
    parse_message,
)
from sublessor_billing.calls.store import insert_calls, is_data_error, quarantine
from sublessor_billing.db.transaction import transaction
from sublessor_billing.phone import mask_phone

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
# A raw body above this is kept truncated (the sha256 is of the whole body), and
# quarantine rows are written in statements of at most this many raw bytes: escaped,
# at most twice that, under MySQL 5.7's default max_allowed_packet of 4 MiB.
MAX_KEPT_BODY = 1024 * 1024
_QUARANTINE_STATEMENT_BYTES = 1024 * 1024


@dataclass
class IntakeResult:
    received: int = 0
    logged: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Batch:
    clock: Callable[[], datetime] = intake_clock
    received_at: datetime | None = None
    last_tag: int | None = None
    started: float = 0.0
    calls: dict[str, Call] = field(default_factory=dict)
    sources: dict[str, tuple[bytes, str | None]] = field(default_factory=dict)
    duplicates_in_batch: int = 0
    invalid: list[tuple[bytes, Invalid, str | None]] = field(default_factory=list)
    size: int = 0

    def add(self, tag: int, body: bytes, routing_key: str | None) -> None:
        if not self.size:
            self.started = time.monotonic()
            self.received_at = self.clock()  # the intake time of the whole batch
        self.size += 1
        self.last_tag = tag
        parsed = parse_message(body, received_at=self.received_at)
        if isinstance(parsed, Invalid):
            self.invalid.append((body, parsed, routing_key))
            return
        first = self.calls.get(parsed.call_id)
        if first is None:
            self.calls[parsed.call_id] = parsed
            self.sources[parsed.call_id] = (body, routing_key)
            return
        self.duplicates_in_batch += 1
        if first != parsed:
            log.warning(
                "Duplicate call_id %s in one batch differs from its first copy (caller %s); "
                "the first copy stands",
                parsed.call_id,
                mask_phone(parsed.caller),
            )


def drain(
    channel: Any,
    queue: str,
    conn: Any,
    *,
    max_messages: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    idle_seconds: float = 1.0,
    max_batch_age: float = 2.0,
    short_threshold: int | None = None,
    clock: Callable[[], datetime] = intake_clock,
) -> IntakeResult:
    """Consume until the queue stays empty for ``idle_seconds`` or ``max_messages`` were taken.

    ``clock`` gives the intake time each batch's messages are validated against
    (a ``start_time`` more than a day after it is invalid).

    With ``short_threshold``, a call that rule 2 (not connected) or rule 3 (too
    short) rejects is logged already judged: those rules need nothing but the call,
    so judging them on arrival cannot depend on order; the judge task then only
    decides the calls that rules 4 and 5 need the history for.
    """
    result = IntakeResult()
    if max_messages <= 0:
        return result
    batch_size = max(1, min(batch_size, max_messages))
    # Prefetch above one batch keeps messages flowing while a batch is written.
    channel.basic_qos(prefetch_count=min(2 * batch_size, max_messages, 65535))
    batch = _Batch(clock)
    try:
        for method, _properties, body in channel.consume(queue, inactivity_timeout=idle_seconds):
            if method is None:
                break
            batch.add(method.delivery_tag, body, method.routing_key)
            result.received += 1
            full = batch.size >= batch_size or time.monotonic() - batch.started > max_batch_age
            if full or result.received >= max_messages:
                _flush(channel, conn, batch, result, short_threshold)
                batch = _Batch(clock)
            if result.received >= max_messages:
                log.info("Reached the cap of %s messages for this run", max_messages)
                break
        _flush(channel, conn, batch, result, short_threshold)
    finally:
        _cancel(channel)
    log.info(
        "Intake from %s: received %s, logged %s, duplicates %s, quarantined %s",
        queue,
        result.received,
        result.logged,
        result.duplicates,
        result.quarantined,
    )
    return result


def _cancel(channel: Any) -> None:
    """Hand prefetched, untaken messages back at once (closing the channel would too)."""
    try:
        if channel.is_open:
            channel.cancel()
    except Exception:  # a broken channel must not hide the error that broke it
        log.warning("Cancelling the consumer failed; the broker requeues on close", exc_info=True)


def _flush(
    channel: Any,
    conn: Any,
    batch: _Batch,
    result: IntakeResult,
    short_threshold: int | None = None,
) -> None:
    if not batch.size:
        return
    calls = list(batch.calls.values())
    try:
        inserted, refused = _write(conn, calls, batch.invalid, short_threshold), []
    except Exception as exc:
        if not is_data_error(exc):
            raise
        # A value validation let through but the log refuses: find it, quarantine it.
        log.warning("The call log refused a batch (%s); writing its calls one by one", exc)
        inserted, refused = _write_singly(conn, batch, short_threshold)
    # Only now is the batch safe: acknowledge everything up to its last message.
    channel.basic_ack(delivery_tag=batch.last_tag, multiple=True)
    result.logged += inserted
    result.duplicates += len(calls) - len(refused) - inserted + batch.duplicates_in_batch
    result.quarantined += len(batch.invalid) + len(refused)
    for _body, invalid, _key in batch.invalid + refused:
        log.warning("Quarantined a message (call_id %r): %s", invalid.call_id, invalid.reason)


def _write(conn: Any, calls: list[Call], invalid: list, short_threshold: int | None) -> int:
    """Log the calls and quarantine the invalid messages in one transaction; commit."""
    with transaction(conn) as cur:
        inserted = insert_calls(cur, calls, short_threshold=short_threshold)
        for chunk in _quarantine_chunks(invalid):
            quarantine(cur, chunk)
    return inserted


def _write_singly(conn: Any, batch: _Batch, short_threshold: int | None) -> tuple[int, list]:
    """Like _write, one call per savepoint; calls the log refuses join the quarantine."""
    inserted, refused = 0, []
    with transaction(conn) as cur:
        for call in batch.calls.values():
            cur.execute("SAVEPOINT one_call")
            try:
                inserted += insert_calls(cur, [call], short_threshold=short_threshold)
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT one_call")
                body, key = batch.sources[call.call_id]
                reason = f"the call log refused it: {exc}"[:500]
                refused.append((body, Invalid(reason, call.call_id[:255]), key))
        for chunk in _quarantine_chunks(batch.invalid + refused):
            quarantine(cur, chunk)
    return inserted, refused


def _quarantine_chunks(items: list[tuple[bytes, Invalid, str | None]]):
    """Yield (sha256, kept body, reason, routing key) rows in statements of bounded size."""
    chunk: list = []
    size = 0
    for body, invalid, key in items:
        digest = body_sha256(body)
        kept = body
        if len(body) > MAX_KEPT_BODY:
            kept = body[:MAX_KEPT_BODY]
            invalid = Invalid(
                f"body of {len(body)} bytes kept truncated to {MAX_KEPT_BODY} "
                f"(its sha256 is of the whole body); {invalid.reason}",
                invalid.call_id,
            )
        if chunk and size + len(kept) > _QUARANTINE_STATEMENT_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append((digest, kept, invalid, key))
        size += len(kept)
    if chunk:
        yield chunk
