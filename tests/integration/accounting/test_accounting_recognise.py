"""recognise_income against a real MariaDB: allocation edges, reruns, crashes, concurrency."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from sublessor_billing.accounting.recognise import recognise_batch, recognise_until_caught_up

pytestmark = pytest.mark.integration

DAY = date(2014, 9, 15)
D = timedelta(days=1)


def test_allocation_edges_against_the_database(seed, accounting_conn) -> None:
    expired = seed.contract(7, 9999, DAY - 30 * D, DAY - D)
    cancelled = seed.contract(7, 9999, DAY - 30 * D, DAY + 30 * D, status=0)
    future = seed.contract(7, 9999, DAY + D, DAY + 30 * D)
    later_start = seed.contract(7, 5000, DAY - 2 * D, DAY + 2 * D)  # overlaps, starts later
    first = seed.contract(7, 1500, DAY - 9 * D, DAY)  # earliest start, ends on the call day
    split = seed.payment(7, 4000)
    nothing = seed.payment(8, 4000)  # sublessor 8 has no contract at all
    refused = seed.payment(7, 4000, status="insufficient")

    counts = recognise_until_caught_up(accounting_conn, batch_size=100)

    assert seed.income() == [
        (split, first, 1500),
        (split, later_start, 2500),
        (nothing, None, 4000),
    ]
    balances = seed.balances()
    assert balances[first] == 0 and balances[later_start] == 2500
    assert balances[expired] == balances[cancelled] == balances[future] == 9999
    assert seed.cursor() == refused
    assert (counts.payments_processed, counts.income_rows) == (3, 3)
    assert (counts.money_allocated, counts.money_unallocated) == (4000, 4000)
    # Lowering the balance is not a CRM edit.
    edited = seed.query("SELECT DISTINCT updated_datetime FROM sublessor_contract")
    assert edited == [(seed.crm_edited_at,)]


def test_a_second_run_changes_nothing(seed, accounting_conn) -> None:
    seed.contract(7, 6000, DAY - D, DAY + D)
    for _ in range(3):
        seed.payment(7, 4000)
    recognise_until_caught_up(accounting_conn, batch_size=2)
    before = seed.snapshot()

    again = recognise_until_caught_up(accounting_conn, batch_size=2)

    assert seed.snapshot() == before
    assert (again.payments_processed, again.income_rows) == (0, 0)


def test_new_payments_continue_after_the_cursor(seed, accounting_conn) -> None:
    contract = seed.contract(7, 10_000, DAY - D, DAY + D)
    p1 = seed.payment(7, 4000)
    recognise_until_caught_up(accounting_conn, batch_size=10)
    p2 = seed.payment(7, 4000)
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.income() == [(p1, contract, 4000), (p2, contract, 4000)]
    assert seed.balances()[contract] == 2000 and seed.cursor() == p2


def test_a_payment_pending_when_passed_is_recognised_once_it_succeeds(
    seed, accounting_conn
) -> None:
    contract = seed.contract(7, 5000, DAY - D, DAY + D)
    late = seed.payment(7, 4000, status="pending")
    early = seed.payment(7, 4000)

    first = recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.watched() == [late] and first.newly_unsettled == 1
    assert seed.income() == [(early, contract, 4000)]

    still = recognise_until_caught_up(accounting_conn, batch_size=10)  # still pending: kept
    assert seed.watched() == [late] and still.late_settled_recognised == 0

    seed.set_status(late, "success")
    second = recognise_until_caught_up(accounting_conn, batch_size=10)
    assert second.late_settled_recognised == 1 and second.payments_processed == 0
    # Allocated after the later payment: it gets what balance is left.
    assert seed.income() == [(early, contract, 4000), (late, contract, 1000), (late, None, 3000)]
    assert seed.watched() == [] and seed.balances()[contract] == 0

    before = seed.snapshot()
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.snapshot() == before


def test_a_pending_payment_later_refused_is_dropped_from_the_watch(seed, accounting_conn) -> None:
    seed.contract(7, 50_000, DAY - D, DAY + D)
    refused = seed.payment(7, 4000, status="pending")
    failed = seed.payment(7, 4000, status="pending")
    stuck = seed.payment(7, 4000, status="pending")
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.watched() == [refused, failed, stuck]

    seed.set_status(refused, "insufficient")
    seed.set_status(failed, "failed")
    counts = recognise_until_caught_up(accounting_conn, batch_size=10)

    assert counts.late_settled_dropped == 2 and counts.late_settled_recognised == 0
    assert seed.watched() == [stuck] and seed.income() == []


def test_stuck_pending_rows_do_not_starve_later_settlements(seed, accounting_conn) -> None:
    stuck = [seed.payment(7, 100, status="pending") for _ in range(4)]
    settles = seed.payment(7, 100, status="pending")
    recognise_until_caught_up(accounting_conn, batch_size=2)
    seed.set_status(settles, "success")
    counts = recognise_until_caught_up(accounting_conn, batch_size=2)
    assert counts.late_settled_recognised == 1
    assert seed.watched() == stuck and seed.income() == [(settles, None, 100)]


def test_a_payment_without_its_call_row_stops_the_cursor_naming_it(seed, accounting_conn) -> None:
    good = seed.payment(7, 4000)
    orphan = seed.payment(7, 4000)
    seed.execute(
        "DELETE c FROM sublessor_call_log_201409 c JOIN sublessor_call_payment_log_201409 p"
        " ON p.call_id = c.call_id WHERE p.id = %s",
        (orphan,),
    )
    with pytest.raises(LookupError, match=str(orphan)):
        recognise_batch(accounting_conn, batch_size=10)
    assert seed.income() == [] and seed.cursor() == 0
    assert good < orphan


def test_a_missing_call_row_is_named_as_text_where_call_ids_are_bytes(
    seed, accounting_conn
) -> None:
    """MySQL 5.7 (no NO PAD collation): migration 060 makes call_id VARBINARY, read back as bytes."""
    for table in ("sublessor_call_log_201409", "sublessor_call_payment_log_201409"):
        seed.execute(f"ALTER TABLE {table} MODIFY call_id VARBINARY(256) NOT NULL")
    orphan = seed.payment(7, 4000)
    seed.execute(
        "DELETE c FROM sublessor_call_log_201409 c JOIN sublessor_call_payment_log_201409 p"
        " ON p.call_id = c.call_id WHERE p.id = %s",
        (orphan,),
    )
    with pytest.raises(LookupError) as missing:
        recognise_batch(accounting_conn, batch_size=10)
    assert f"payment {orphan} refers to call_id 'call-1'," in str(missing.value)
