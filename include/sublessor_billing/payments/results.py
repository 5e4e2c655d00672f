"""What a charging pass reports: its counts (``ChargeReport``) and the errors that end it.

A pass settles every order it can first; these errors are raised at its end
(``charging.charge_valid_calls``) for what is left for a person.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sublessor_billing.db.tables import CALL_LOG, PAYMENT_LOG
from sublessor_billing.payments import orphans
from sublessor_billing.payments.allocation import Allocation
from sublessor_billing.payments.outcomes import ORDER_ID_MIN, SETTLED, PaymentStatus
from sublessor_billing.payments.sweep import UNFIT_WHY


class ChargesPending(RuntimeError):
    """Orders still without a known outcome after the in-task retries; a person should look."""

    def __init__(self, report: ChargeReport, *, attempts: int, where: str) -> None:
        total = report.counts.get(PaymentStatus.PENDING, 0)
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
            f"{allocation.unallocatable} valid call(s) of {CALL_LOG} cannot be given an "
            f"order ({UNFIT_WHY}), so they are not charged: {shown}"
            f"{f'; and {more} more' if more > 0 else ''}. Every other call was charged. Repair "
            "each row (the next pass charges it), or write it off, never to be charged: UPDATE "
            f"{CALL_LOG} c SET c.order_allocated = 2 WHERE c.id = <id> AND c.filter_rule = 1 "
            f"AND c.order_allocated = 0 AND NOT EXISTS (SELECT 1 FROM {PAYMENT_LOG} p WHERE "
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
            **{s.value: self.counts.get(s, 0) for s in (*SETTLED, PaymentStatus.PENDING)},
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
