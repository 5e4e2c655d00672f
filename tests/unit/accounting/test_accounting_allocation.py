"""The allocation rule of tables.md, without a database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sublessor_billing.accounting.allocation import (
    Contract,
    IncomeRow,
    SettledPayment,
    allocate,
)

DAY = date(2014, 9, 15)


def pay(pid: int, amount: int = 4000, sublessor: int = 7, day: date = DAY) -> SettledPayment:
    return SettledPayment(pid, sublessor, amount, day)


def contract(
    cid: int,
    balance: int,
    *,
    start=DAY - timedelta(days=10),
    end=DAY + timedelta(days=10),
    status=1,
    sublessor=7,
):
    return Contract(cid, sublessor, balance, start, end, status)


def test_whole_payment_goes_to_the_only_covering_contract() -> None:
    result = allocate([pay(1)], [contract(10, 10_000)])
    assert result.rows == [IncomeRow(1, 10, 7, 4000, DAY)]
    assert result.balances == {10: 6000}
    assert (result.allocated, result.unallocated) == (4000, 0)


def test_expired_cancelled_future_other_sublessor_and_empty_contracts_take_nothing() -> None:
    contracts = [
        contract(1, 9999, end=DAY - timedelta(days=1)),  # expired the day before
        contract(2, 9999, status=0),  # cancelled
        contract(3, 9999, start=DAY + timedelta(days=1)),  # starts the day after
        contract(4, 9999, sublessor=8),  # someone else's
        contract(5, 0),  # nothing left
    ]
    result = allocate([pay(1)], contracts)
    assert result.rows == [IncomeRow(1, None, 7, 4000, DAY)]
    assert result.balances == {}
    assert result.unallocated == 4000


def test_contract_boundaries_are_inclusive() -> None:
    result = allocate(
        [pay(1, day=DAY), pay(2, day=DAY + timedelta(days=5))],
        [
            contract(1, 9999, start=DAY, end=DAY),
            contract(2, 9999, start=DAY + timedelta(days=5), end=DAY + timedelta(days=5)),
        ],
    )
    assert [(r.payment_id, r.contract_id) for r in result.rows] == [(1, 1), (2, 2)]


def test_overlapping_contracts_earliest_start_then_lowest_id_and_split() -> None:
    contracts = [
        contract(30, 5000, start=DAY - timedelta(days=3)),
        contract(20, 1000, start=DAY - timedelta(days=5)),  # earliest start: first
        contract(25, 5000, start=DAY - timedelta(days=3)),  # same start as 30, lower id: second
    ]
    result = allocate([pay(1, 4000), pay(2, 4000)], contracts)
    assert [(r.payment_id, r.contract_id, r.amount) for r in result.rows] == [
        (1, 20, 1000),
        (1, 25, 3000),
        (2, 25, 2000),
        (2, 30, 2000),
    ]
    assert result.balances == {20: 0, 25: 0, 30: 3000}


def test_remainder_beyond_all_balances_is_one_null_row() -> None:
    result = allocate([pay(1, 4000)], [contract(1, 1500), contract(2, 1000)])
    assert [(r.contract_id, r.amount) for r in result.rows] == [(1, 1500), (2, 1000), (None, 1500)]
    assert (result.allocated, result.unallocated) == (2500, 1500)


def test_payments_are_taken_in_ascending_id_whatever_the_input_order() -> None:
    result = allocate([pay(9, 3000), pay(3, 3000)], [contract(1, 4000)])
    assert [(r.payment_id, r.contract_id, r.amount) for r in result.rows] == [
        (3, 1, 3000),
        (9, 1, 1000),
        (9, None, 2000),
    ]


def test_zero_amount_gives_no_rows_and_negative_is_refused() -> None:
    assert allocate([pay(1, 0)], [contract(1, 100)]).rows == []
    with pytest.raises(ValueError, match="payment 2"):
        allocate([pay(2, -1)], [contract(1, 100)])


def test_duplicate_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="payment 1"):
        allocate([pay(1), pay(1)], [])
    with pytest.raises(ValueError, match="contract 1"):
        allocate([], [contract(1, 1), contract(1, 2)])


def test_inputs_are_not_mutated_and_received_matches_balances() -> None:
    contracts = [contract(1, 5000)]
    result = allocate([pay(1, 4000)], contracts)
    assert contracts[0].balance == 5000
    assert result.received({1: 5000}) == {1: 4000}


contracts_st = st.lists(
    st.builds(
        Contract,
        id=st.integers(1, 40),
        sublessor_id=st.integers(1, 3),
        balance=st.integers(0, 9000),
        start_date=st.dates(DAY - timedelta(days=5), DAY + timedelta(days=5)),
        end_date=st.dates(DAY - timedelta(days=5), DAY + timedelta(days=5)),
        status=st.sampled_from([0, 1]),
    ),
    unique_by=lambda c: c.id,
    max_size=12,
)
payments_st = st.lists(
    st.builds(
        SettledPayment,
        id=st.integers(1, 10_000),
        sublessor_id=st.integers(1, 3),
        amount=st.integers(0, 6000),
        call_date=st.dates(DAY - timedelta(days=6), DAY + timedelta(days=6)),
    ),
    unique_by=lambda p: p.id,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(payments=payments_st, contracts=contracts_st)
def test_money_is_conserved_and_only_eligible_contracts_receive(payments, contracts) -> None:
    result = allocate(payments, contracts)
    by_id = {c.id: c for c in contracts}
    for p in payments:
        rows = [r for r in result.rows if r.payment_id == p.id]
        assert sum(r.amount for r in rows) == p.amount
        assert all(r.amount > 0 for r in rows)
        assert sum(1 for r in rows if r.contract_id is None) <= 1
        for r in rows:
            if r.contract_id is not None:
                c = by_id[r.contract_id]
                assert c.sublessor_id == p.sublessor_id and c.covers(p.call_date)
    received = result.received({c.id: c.balance for c in contracts})
    for cid, amount in received.items():
        assert amount == sum(r.amount for r in result.rows if r.contract_id == cid)
        assert result.balances[cid] >= 0
    assert result.allocated + result.unallocated == sum(p.amount for p in payments)


@settings(max_examples=200, deadline=None)
@given(payments=payments_st, contracts=contracts_st)
def test_null_row_only_when_every_eligible_contract_is_exhausted(payments, contracts) -> None:
    """Money goes unallocated only if no covering contract had balance left at that point."""
    result = allocate(payments, contracts)
    balance = {c.id: c.balance for c in contracts}
    for r in result.rows:  # rows come out in allocation order: replay them
        if r.contract_id is None:
            p = next(p for p in payments if p.id == r.payment_id)
            assert not any(
                balance[c.id] > 0 and c.sublessor_id == p.sublessor_id and c.covers(p.call_date)
                for c in contracts
            )
        else:
            balance[r.contract_id] -= r.amount
