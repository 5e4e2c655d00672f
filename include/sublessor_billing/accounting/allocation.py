"""The allocation rule of accounting income, as pure functions (tables.md).

Each successful payment, in ascending payment id, goes to its sublessor's
contracts that are active, cover the call's date and still have balance,
earliest ``start_date`` first, then lowest id; a payment may be split over
several contracts; what no contract can take becomes one row with
``contract_id`` None. No database here: payments and contracts in, income rows
and new balances out, so the rule is tested on its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

ACTIVE = 1


@dataclass(frozen=True)
class SettledPayment:
    """A successful payment, with the date of its call's ``start_time``."""

    id: int
    sublessor_id: int
    amount: int  # fen
    call_date: date


@dataclass(frozen=True)
class Contract:
    id: int
    sublessor_id: int
    balance: int  # fen not yet recognised
    start_date: date
    end_date: date
    status: int = ACTIVE

    def covers(self, day: date) -> bool:
        return self.status == ACTIVE and self.start_date <= day <= self.end_date


@dataclass(frozen=True)
class IncomeRow:
    payment_id: int
    contract_id: int | None  # None: no contract could take it
    sublessor_id: int
    amount: int  # fen
    call_date: date


@dataclass
class Allocation:
    rows: list[IncomeRow] = field(default_factory=list)
    # New balance of every contract that received money (contract id -> fen).
    balances: dict[int, int] = field(default_factory=dict)
    allocated: int = 0
    unallocated: int = 0

    def received(self, before: dict[int, int]) -> dict[int, int]:
        """What each contract received: its balance before minus its new balance."""
        return {cid: before[cid] - new for cid, new in self.balances.items()}


def contract_order(contract: Contract) -> tuple[date, int]:
    """Earliest start_date first, then lowest id."""
    return (contract.start_date, contract.id)


def allocate(payments: Iterable[SettledPayment], contracts: Iterable[Contract]) -> Allocation:
    """Allocate payments (taken in ascending id) to contracts; never mutates the inputs."""
    by_sublessor: dict[int, list[Contract]] = defaultdict(list)
    balance: dict[int, int] = {}
    for contract in contracts:
        if contract.id in balance:
            raise ValueError(f"contract {contract.id} given twice to allocate()")
        by_sublessor[contract.sublessor_id].append(contract)
        balance[contract.id] = contract.balance
    for candidates in by_sublessor.values():
        candidates.sort(key=contract_order)

    result = Allocation()
    seen: set[int] = set()
    for payment in sorted(payments, key=lambda p: p.id):
        if payment.id in seen:
            raise ValueError(f"payment {payment.id} given twice to allocate()")
        seen.add(payment.id)
        if payment.amount < 0:
            raise ValueError(
                f"payment {payment.id} has a negative amount ({payment.amount} fen); "
                "fix the payment log row before income can be recognised"
            )
        rest = payment.amount
        for contract in by_sublessor.get(payment.sublessor_id, ()):
            if rest == 0:
                break
            available = balance[contract.id]
            if available <= 0 or not contract.covers(payment.call_date):
                continue
            taken = min(rest, available)
            balance[contract.id] = available - taken
            result.balances[contract.id] = available - taken
            result.rows.append(
                IncomeRow(payment.id, contract.id, payment.sublessor_id, taken, payment.call_date)
            )
            result.allocated += taken
            rest -= taken
        if rest > 0:
            result.rows.append(
                IncomeRow(payment.id, None, payment.sublessor_id, rest, payment.call_date)
            )
            result.unallocated += rest
    return result
