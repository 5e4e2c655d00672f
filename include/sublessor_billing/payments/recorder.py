"""Phase 2, the recording side: answers -> the payment log, in batches while requests are in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sublessor_billing.payments import store
from sublessor_billing.payments.outcomes import Outcome, PaymentStatus

if TYPE_CHECKING:
    from sublessor_billing.payments.results import ChargeReport

log = logging.getLogger(__name__)


class Recorder:
    """Write answers while requests are in flight: batches of ``batch_size`` (or every
    ``flush_seconds``), each in one transaction (``store.record_outcomes``) with its offline
    decisions. A crash loses at most the unwritten batch: those rows stay pending and are re-sent.
    """

    def __init__(
        self,
        conn: Any,
        report: ChargeReport,
        expected: int,
        price_fen: int,
        batch_size: int,
        flush_seconds: float,
        on_phase: Callable[[str], None],
    ) -> None:
        self.conn, self.report, self.expected = conn, report, expected
        self.price_fen, self.batch_size, self.flush_seconds = price_fen, batch_size, flush_seconds
        self.on_phase = on_phase
        self._buffer: list[Outcome] = []
        self._received = 0
        self._ready = asyncio.Event()  # a full batch, or every answer is in
        self._writing: asyncio.Future[None] | None = None  # the batch being written

    def add(self, outcome: Outcome) -> None:
        if self._received == 0:
            self.on_phase("first_answer")
        self._received += 1
        self._buffer.append(outcome)
        if self._batch_ready():
            self._ready.set()

    def finish(self) -> None:
        """No more answers come (the senders ended, or the pass deadline passed): write what came."""
        self.expected = self._received
        self._ready.set()

    def _batch_ready(self) -> bool:
        return len(self._buffer) >= self.batch_size or (
            bool(self._buffer) and self._received == self.expected
        )

    async def run(self) -> None:
        """Flush until every expected outcome is written; on cancellation write what came (shielded)."""
        try:
            await self._flush_until_done()
        except asyncio.CancelledError:  # SIGINT / the task stopped: keep what was received
            await asyncio.shield(self._final_flush())
            raise

    async def _final_flush(self) -> None:
        try:
            if self._writing is not None:  # the batch being written when cancelled: let it end
                await self._writing
            if self._buffer:
                await asyncio.to_thread(self._write, self._buffer)
        except Exception:  # those rows stay pending and are re-sent (answered as duplicates)
            log.exception("Writing the answers received before the pass was cancelled failed")

    async def _flush_until_done(self) -> None:
        written = 0
        while written < self.expected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_seconds):
                    await self._ready.wait()
            self._ready.clear()
            batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            if self._batch_ready():  # more than a batch came in while the last one was written
                self._ready.set()
            if batch:
                self._writing = asyncio.ensure_future(asyncio.to_thread(self._write, batch))
                await asyncio.shield(self._writing)  # a cancellation waits for it (_final_flush)
                written += len(batch)
                self.on_phase("batch_recorded")

    def _write(self, batch: list[Outcome]) -> None:
        settled, decided = store.record_outcomes(self.conn, batch, price_fen=self.price_fen)
        self.report.decided(decided)
        self.report.retried += sum(1 for o in batch if o.attempts > 1)
        for o in settled:
            self.report.counts[o.status] += 1
            if o.status == PaymentStatus.SUCCESS:
                self.report.charged_fen += o.amount
