"""recognise_income under failure: errors and kills before commit, concurrent runs, deadlocks, in-flight inserts."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from support.crash import assert_killed, run_child
from support.waiting import Worker, wait_until

from sublessor_billing.accounting import recognise
from sublessor_billing.accounting.recognise import recognise_batch, recognise_until_caught_up
from sublessor_billing.db.connect import connect

pytestmark = pytest.mark.integration

DAY = date(2014, 9, 15)
D = timedelta(days=1)


def test_an_error_inside_the_transaction_leaves_nothing_and_the_rerun_allocates_once(
    seed, accounting_conn, monkeypatch
) -> None:
    contract = seed.contract(7, 5000, DAY - D, DAY + D)
    payments = [seed.payment(7, 2000) for _ in range(3)]

    def explode(cur, ids, *chunking):
        raise RuntimeError("injected failure after income rows and balances were written")

    monkeypatch.setattr(recognise, "_unwatch", explode)
    with pytest.raises(RuntimeError, match="injected"):
        recognise_batch(accounting_conn, batch_size=10)
    assert seed.income() == [] and seed.balances()[contract] == 5000 and seed.cursor() == 0

    monkeypatch.undo()
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.income() == [
        (payments[0], contract, 2000),
        (payments[1], contract, 2000),
        (payments[2], contract, 1000),
        (payments[2], None, 1000),
    ]
    assert seed.balances()[contract] == 0


# One batch in a child process, killed (SIGKILL) after its work and before its commit.
KILLED_BATCH = """
from support.crash import kill_self, target_from_env

from sublessor_billing.accounting import recognise
from sublessor_billing.db.connect import connect

real_unwatch = recognise._unwatch


def die_before_commit(cur, ids, *chunking):
    real_unwatch(cur, ids, *chunking)
    cur.execute("SELECT COUNT(*) FROM sublessor_accounting_income_201409")
    print("written", cur.fetchone()[0], flush=True)
    kill_self()


recognise._unwatch = die_before_commit
recognise.recognise_batch(connect(target_from_env()), batch_size=100)
"""


def test_a_run_killed_before_commit_is_redone_exactly_once(
    seed, accounting_conn, user_prop_target
) -> None:
    contract = seed.contract(7, 100_000, DAY - D, DAY + D)
    payments = [seed.payment(7, 4000) for _ in range(5)]
    proc = run_child(KILLED_BATCH, target=user_prop_target, timeout=60)
    assert_killed(proc)
    assert proc.stdout.strip() == "written 5"  # it had done the work inside its transaction
    assert seed.income() == [] and seed.cursor() == 0

    recognise_until_caught_up(accounting_conn, batch_size=100)  # waits for the dead session's locks
    assert seed.income() == [(p, contract, 4000) for p in payments]
    assert seed.balances()[contract] == 100_000 - 5 * 4000


def test_two_concurrent_runs_never_allocate_the_same_money_twice(
    seed, user_prop_target, monkeypatch
) -> None:
    contracts = {seed.contract(s, 30_000, DAY - D, DAY + D): s for s in (1, 2, 3)}
    amounts = {}
    for i in range(90):
        pid = seed.payment(1 + i % 3, 1000 + 37 * i)
        amounts[pid] = 1000 + 37 * i
    # Both runs open their first batch together, then contend for the cursor row.
    together = threading.Barrier(2, timeout=60)
    real_batch = recognise._batch
    first_batch_done: set[str] = set()

    def batch_after_the_other_arrived(cur, *args):
        me = threading.current_thread().name
        if me not in first_batch_done:
            first_batch_done.add(me)
            together.wait()  # both are inside a run, about to lock the cursor
        return real_batch(cur, *args)

    monkeypatch.setattr(recognise, "_batch", batch_after_the_other_arrived)

    def run():
        conn = connect(user_prop_target)
        try:
            return recognise_until_caught_up(conn, batch_size=7)
        finally:
            conn.close()

    with Worker(run, name="run-a") as a, Worker(run, name="run-b") as b:
        pass
    assert first_batch_done == {"run-a", "run-b"}  # the barrier was passed: they overlapped
    processed = a.result.payments_processed + b.result.payments_processed
    assert processed == 90  # each payment passed by exactly one of them

    per_payment = dict(
        seed.query(
            "SELECT payment_id, SUM(amount) FROM sublessor_accounting_income_201409 GROUP BY payment_id"
        )
    )
    assert per_payment == amounts
    received = dict(
        seed.query(
            "SELECT contract_id, SUM(amount) FROM sublessor_accounting_income_201409"
            " WHERE contract_id IS NOT NULL GROUP BY contract_id"
        )
    )
    balances = seed.balances()
    for cid in contracts:
        assert balances[cid] == 30_000 - received.get(cid, 0) >= 0
    assert seed.cursor() == max(amounts)


def test_the_cursor_waits_for_a_lower_payment_still_being_inserted(
    seed, user_prop_target, accounting_conn
) -> None:
    """An order id allocated but not yet committed must not be jumped over by the cursor."""
    contract = seed.contract(7, 100_000, DAY - D, DAY + D)
    seed.execute(
        "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
        " start_time, duration, filter_rule) VALUES ('slow', 7, '1', '4008', 1, %s, 60, 1)",
        (DAY,),
    )
    inserter = connect(user_prop_target)
    try:
        with inserter.cursor() as cur:  # holds its new row uncommitted
            cur.execute(
                "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject,"
                " status) VALUES ('slow', 7, 4000, 'call', 'success')"
            )
            slow = cur.lastrowid
        later = seed.payment(7, 4000)  # a higher id, committed first
        assert slow < later

        with Worker(lambda: recognise_until_caught_up(accounting_conn, batch_size=10)) as run:
            # Until the batch waits on the in-flight row (or wrongly finishes without it).
            wait_until(
                lambda: (
                    run.done()
                    or seed.query(
                        "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
                        " AND id <> CONNECTION_ID() AND info LIKE '%%LOCK IN SHARE MODE'"
                    )[0][0]
                ),
                60,
                "the accounting batch to wait on the uncommitted payment",
            )
            inserter.commit()
    finally:
        inserter.close()
    recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.income() == [(slow, contract, 4000), (later, contract, 4000)]


def test_a_deadlock_victim_batch_is_run_again(seed, accounting_conn, monkeypatch) -> None:
    import MySQLdb

    contract = seed.contract(7, 10_000, DAY - D, DAY + D)
    payment = seed.payment(7, 4000)
    real_batch = recognise._batch
    calls = []

    def deadlock_once(cur, batch_size, *chunking):
        calls.append(batch_size)
        if len(calls) == 1:
            # The work is done, then MySQL picks us as the victim.
            real_batch(cur, batch_size, *chunking)
            raise MySQLdb.OperationalError(1213, "Deadlock found when trying to get lock")
        return real_batch(cur, batch_size, *chunking)

    monkeypatch.setattr(recognise, "_batch", deadlock_once)
    counts = recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.income() == [(payment, contract, 4000)]
    assert counts.payments_processed == 1 and len(calls) == 3  # victim, redo, caught up

    monkeypatch.setattr(
        recognise,
        "_batch",
        lambda cur, *_: (_ for _ in ()).throw(MySQLdb.OperationalError(1213, "again")),
    )
    with pytest.raises(MySQLdb.OperationalError):
        recognise_until_caught_up(accounting_conn, batch_size=10)
