"""Recognition at and across every chunk boundary, and once at production sizes.

A batch reads ``batch_size`` payments; its statements take at most ``in_chunk``
ids each: the sublessors whose contracts are locked, the calls dated, the late
payments re-read and unwatched, and the contracts whose balances one UPDATE
lowers (each UPDATE checks its row count). Small sizes are injected and each
boundary tested with size - 1, size and size + 1 items; the last test runs the
production sizes (5,000 payments per batch, 1,000 per statement).
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from support.db import statements

from sublessor_billing.accounting.recognise import IN_CHUNK, recognise_until_caught_up
from sublessor_billing.config import ACCOUNTING_INCOME_BATCH_SIZE

pytestmark = pytest.mark.integration

DAY = date(2014, 9, 15)
D = timedelta(days=1)
LOWER = r"^UPDATE sublessor_contract SET balance"
LOCK = r"FROM sublessor_contract WHERE sublessor_id IN"


def around(size: int) -> list[int]:
    return [size - 1, size, size + 1]


@pytest.mark.parametrize("contracts", around(3))
def test_balances_lowered_in_update_chunks_reach_every_contract(
    seed, accounting_conn, contracts
) -> None:
    """Three contracts per UPDATE (and three sublessors per lock): every balance is lowered once."""
    ids = [seed.contract(s, 10_000, DAY - D, DAY + D) for s in range(1, contracts + 1)]
    seed.payments([(s, 4000, "success") for s in range(1, contracts + 1)])

    with statements(f"{LOWER}|{LOCK}") as executed:
        counts = recognise_until_caught_up(accounting_conn, batch_size=100, in_chunk=3)

    assert sum(q.startswith("UPDATE") for q in executed) == math.ceil(contracts / 3)
    assert sum("FOR UPDATE" in q for q in executed) == math.ceil(contracts / 3)
    assert seed.balances() == dict.fromkeys(ids, 6000)
    assert (counts.income_rows, counts.money_allocated) == (contracts, 4000 * contracts)


def test_a_payment_split_over_two_contracts_in_different_update_chunks(
    seed, accounting_conn
) -> None:
    """Contracts 3 and 4 of one sublessor fall in two UPDATEs: both balances are lowered."""
    before = [seed.contract(s, 10_000, DAY - D, DAY + D) for s in (1, 2)]
    first = seed.contract(9, 1500, DAY - 5 * D, DAY + D)  # earliest start: drawn first
    second = seed.contract(9, 10_000, DAY - D, DAY + D)
    seed.payments([(1, 4000, "success"), (2, 4000, "success"), (9, 4000, "success")])

    with statements(LOWER) as updates:
        counts = recognise_until_caught_up(accounting_conn, batch_size=100, in_chunk=3)

    assert len(updates) == 2
    assert seed.balances() == {before[0]: 6000, before[1]: 6000, first: 0, second: 7500}
    assert (counts.income_rows, counts.money_allocated, counts.money_unallocated) == (4, 12_000, 0)


@pytest.mark.parametrize("late", around(3))
def test_late_settlements_reread_and_unwatched_in_chunks(seed, accounting_conn, late) -> None:
    """Three ids per IN list: every payment pending when passed is recognised once it settles."""
    contract = seed.contract(7, 100_000, DAY - D, DAY + D)
    pending = seed.payments([(7, 1000, "pending")] * late)
    recognise_until_caught_up(accounting_conn, batch_size=100, in_chunk=3)
    assert seed.watched() == pending
    for payment in pending:
        seed.set_status(payment, "success")

    with statements(r"WHERE id IN|DELETE FROM accounting_unsettled_payment") as executed:
        counts = recognise_until_caught_up(accounting_conn, batch_size=100, in_chunk=3)

    assert sum(q.startswith("SELECT") for q in executed) == math.ceil(late / 3)
    assert sum(q.startswith("DELETE") for q in executed) == math.ceil(late / 3)
    assert counts.late_settled_recognised == late and seed.watched() == []
    assert seed.income() == [(p, contract, 1000) for p in pending]
    assert seed.balances() == {contract: 100_000 - 1000 * late}


@pytest.mark.parametrize("payments", around(4))
def test_a_contract_drawn_down_across_the_batch_boundary(seed, accounting_conn, payments) -> None:
    """Four payments per batch: the contract runs dry in the second batch, not before, not twice."""
    contract = seed.contract(7, 4 * 1000 + 500, DAY - D, DAY + D)
    ids = seed.payments([(7, 1000, "success")] * payments)

    counts = recognise_until_caught_up(accounting_conn, batch_size=4)

    assert counts.batches == math.ceil(payments / 4) + 1  # the last one finds nothing
    assert seed.cursor() == ids[-1]
    expected = [(p, contract, 1000) for p in ids[:4]]
    if payments > 4:
        expected += [(ids[4], contract, 500), (ids[4], None, 500)]
    assert seed.income() == expected
    assert seed.balances() == {contract: max(4500 - 1000 * payments, 0)}


def test_recognition_at_production_sizes(seed, accounting_conn) -> None:
    """5,001 payments of 1,001 sublessors on 2,002 contracts: 5,000 per batch, 1,000 per statement.

    Each sublessor's first contract runs dry on its third payment (split over both).
    """
    assert (int(ACCOUNTING_INCOME_BATCH_SIZE.default), IN_CHUNK) == (5000, 1000)
    sublessors = range(1, 1002)
    first = {s: seed.contract(s, 9000, DAY - 9 * D, DAY + D) for s in sublessors}
    second = {s: seed.contract(s, 10**7, DAY - D, DAY + D) for s in sublessors}
    owners = [1 + i % 1001 for i in range(5001)]
    ids = seed.payments([(s, 4000, "success") for s in owners])

    with statements(f"{LOWER}|{LOCK}") as executed:
        counts = recognise_until_caught_up(
            accounting_conn, batch_size=int(ACCOUNTING_INCOME_BATCH_SIZE.default)
        )

    # Batch 1: 1,001 sublessors (2 locks), 2,002 contracts (3 UPDATEs); batch 2: one payment.
    assert sum("FOR UPDATE" in q for q in executed) == 2 + 1
    assert sum(q.startswith("UPDATE") for q in executed) == 3 + 1
    assert counts.batches == 3 and counts.payments_processed == 5001
    assert seed.cursor() == ids[-1]
    assert counts.money_allocated == 4000 * 5001 and counts.money_unallocated == 0
    assert counts.income_rows == 5001 + 1001  # every third payment is split
    paid = {s: 4000 * owners.count(s) for s in sublessors}
    balances = seed.balances()
    assert {s: balances[first[s]] for s in sublessors} == dict.fromkeys(sublessors, 0)
    assert {s: balances[second[s]] for s in sublessors} == {
        s: 10**7 - (paid[s] - 9000) for s in sublessors
    }
    income = seed.query(
        "SELECT payment_id, SUM(amount) FROM sublessor_accounting_income_201409 GROUP BY payment_id"
    )
    assert dict(income) == dict.fromkeys(ids, 4000)
