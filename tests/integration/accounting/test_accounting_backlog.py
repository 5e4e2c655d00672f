"""Late-settled payments keep ascending payment id order, also after a backlog."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sublessor_billing.accounting import recognise_batch, recognise_until_caught_up

pytestmark = pytest.mark.integration

DAY = date(2014, 9, 15)
D = timedelta(days=1)


def test_a_backlog_of_late_settlements_is_drained_before_newer_payments(
    seed, accounting_conn
) -> None:
    contract = seed.contract(7, 4000, DAY - D, DAY + D)  # enough for one payment
    other = [seed.payment(9, 100, status="pending") for _ in range(2)]
    older = seed.payment(7, 4000, status="pending")
    recognise_until_caught_up(accounting_conn, batch_size=2)
    assert seed.watched() == [*other, older]

    # An outage ends: all three settle, and a newer payment of the same sublessor arrives.
    for pid in (*other, older):
        seed.set_status(pid, "success")
    newer = seed.payment(7, 4000)

    first = recognise_batch(accounting_conn, batch_size=2)
    assert (first.late_settled_recognised, first.payments_processed) == (2, 0)
    assert seed.cursor() == older  # the full page of late ones held the new payments back
    recognise_until_caught_up(accounting_conn, batch_size=2)

    rows = {(pid, cid): amount for pid, cid, amount in seed.income()}
    assert rows[(older, contract)] == 4000 and rows[(newer, None)] == 4000
    assert seed.watched() == [] and seed.cursor() == newer


def test_late_and_new_payments_of_one_batch_are_allocated_in_id_order(
    seed, accounting_conn
) -> None:
    contract = seed.contract(7, 5000, DAY - D, DAY + D)
    late = seed.payment(7, 4000, status="pending")
    recognise_until_caught_up(accounting_conn, batch_size=10)
    seed.set_status(late, "success")
    new = seed.payment(7, 4000)

    counts = recognise_batch(accounting_conn, batch_size=10)
    assert (counts.late_settled_recognised, counts.payments_processed) == (1, 1)
    assert seed.income() == [(late, contract, 4000), (new, contract, 1000), (new, None, 3000)]


def test_an_unknown_status_of_a_watched_payment_stops_the_batch_naming_it(
    seed, accounting_conn
) -> None:
    watched = seed.payment(7, 4000, status="pending")
    recognise_until_caught_up(accounting_conn, batch_size=10)
    seed.set_status(watched, "refunded")
    seed.payment(7, 4000)
    before = seed.snapshot()
    with pytest.raises(ValueError, match=f"watched payment {watched} has unknown status"):
        recognise_batch(accounting_conn, batch_size=10)
    assert seed.snapshot() == before
