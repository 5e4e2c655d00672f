"""recognise_income's guards against real MariaDB: the balance row count, a real lock wait, a vanished watch."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import MySQLdb
import pytest

from sublessor_billing.accounting import recognise
from sublessor_billing.accounting.recognise import (
    ensure_cursor,
    recognise_batch,
    recognise_until_caught_up,
)
from sublessor_billing.db import transaction
from sublessor_billing.db.connect import connect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DAY = date(2014, 9, 15)
D = timedelta(days=1)


def test_a_balance_update_changing_fewer_contracts_than_named_rolls_the_batch_back(
    seed, accounting_conn
) -> None:
    """A contract gone between its lock and the balance UPDATE: nothing committed, cursor kept."""
    kept = seed.contract(7, 10_000, DAY - D, DAY + D)
    gone = seed.contract(8, 10_000, DAY - D, DAY + D)
    payments = [
        seed.payment(7, 3000),
        seed.payment(8, 2000),
        seed.payment(8, 500, status="pending"),
    ]
    # Inside the batch's own transaction: the income row of `gone` deletes that contract,
    # so the UPDATE naming both contracts changes one row.
    seed.execute(
        "CREATE TRIGGER income_deletes_its_contract AFTER INSERT ON sublessor_accounting_income_201409"
        f" FOR EACH ROW DELETE FROM sublessor_contract WHERE id = NEW.contract_id AND id = {gone:d}"
    )
    ensure_cursor(accounting_conn)  # committed at 0 before the batch's transaction
    before = seed.snapshot()

    with pytest.raises(
        RuntimeError, match="expected to lower the balance of 2 contracts, changed 1"
    ):
        recognise_batch(accounting_conn, batch_size=10)
    assert seed.snapshot() == before  # no income, both balances and rows, no watch, cursor 0
    assert before[3] == 0 and seed.balances() == {kept: 10_000, gone: 10_000}

    with pytest.raises(RuntimeError, match="changed 1"):  # not taken for a lock conflict
        recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.snapshot() == before

    seed.execute("DROP TRIGGER income_deletes_its_contract")
    counts = recognise_until_caught_up(accounting_conn, batch_size=10)
    assert seed.income() == [(payments[0], kept, 3000), (payments[1], gone, 2000)]
    assert seed.balances() == {kept: 7000, gone: 8000}
    assert seed.watched() == [payments[2]] and seed.cursor() == payments[2]
    assert counts.payments_processed == 3


class _OnLockConflict(logging.Handler):
    """Ends the blocking transaction when the batch reports it was rolled back and runs again."""

    def __init__(self, blocker) -> None:
        super().__init__(logging.WARNING)
        self.blocker = blocker
        self.codes: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "rolled back by MySQL" in record.getMessage():
            self.codes.append(record.args[1])
            self.blocker.rollback()


# Where the other session holds its lock: before the batch writes (the contracts it must
# lock), or after it inserted income and lowered balances (the watch row it inserts last).
BLOCKERS = [
    pytest.param(
        "SELECT id FROM sublessor_contract WHERE sublessor_id = 7 FOR UPDATE", id="contract-row"
    ),
    pytest.param(
        "INSERT INTO accounting_unsettled_payment (payment_id) VALUES ({pending:d})",
        id="watch-row-after-writes",
    ),
]


@pytest.mark.parametrize("blocking_sql", BLOCKERS)
def test_a_lock_wait_timeout_reruns_the_batch_and_recognises_once(
    seed, accounting_conn, user_prop_target, blocking_sql
) -> None:
    contract = seed.contract(7, 10_000, DAY - D, DAY + D)
    paid = [seed.payment(7, 4000), seed.payment(7, 4000)]
    pending = seed.payment(7, 4000, status="pending")
    last = seed.payment(7, 4000)
    with accounting_conn.cursor() as cur:
        cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
    blocker = connect(user_prop_target)
    handler = _OnLockConflict(blocker)
    logging.getLogger(transaction.__name__).addHandler(handler)
    try:
        with blocker.cursor() as cur:  # holds its lock, uncommitted, until the batch gives up
            cur.execute(blocking_sql.format(pending=pending))
        counts = recognise_until_caught_up(accounting_conn, batch_size=10)
    finally:
        logging.getLogger(transaction.__name__).removeHandler(handler)
        blocker.close()

    assert handler.codes == [1205]  # it really waited, timed out once, and ran again
    assert seed.income() == [
        (paid[0], contract, 4000),
        (paid[1], contract, 4000),
        (last, contract, 2000),
        (last, None, 2000),
    ]
    assert seed.balances()[contract] == 0
    assert seed.watched() == [pending] and seed.cursor() == last
    assert counts.payments_processed == 4 and counts.income_rows == 4  # the cursor passed them once
    assert counts.newly_unsettled == 1


def test_a_lock_wait_timeout_on_every_attempt_fails_leaving_nothing(
    seed, accounting_conn, user_prop_target
) -> None:
    seed.contract(7, 10_000, DAY - D, DAY + D)
    seed.payment(7, 4000)
    ensure_cursor(accounting_conn)
    before = seed.snapshot()
    with accounting_conn.cursor() as cur:
        cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
    blocker = connect(user_prop_target)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT id FROM sublessor_contract FOR UPDATE")
        with pytest.raises(MySQLdb.OperationalError, match="Lock wait timeout exceeded") as failure:
            recognise_until_caught_up(accounting_conn, batch_size=10)
    finally:
        blocker.close()
    assert failure.value.args[0] == 1205
    assert seed.snapshot() == before


def test_a_watched_payment_deleted_from_the_log_leaves_the_watch_with_a_warning(
    seed, accounting_conn, caplog
) -> None:
    """Documented: "a row whose payment vanished -> removed with a warning"; it never blocks."""
    contract = seed.contract(7, 100_000, DAY - D, DAY + D)
    deleted = [seed.payment(7, 1000, status="pending") for _ in range(3)]
    stuck = seed.payment(7, 1000, status="pending")
    recognise_until_caught_up(accounting_conn, batch_size=2)
    assert seed.watched() == [*deleted, stuck]

    seed.execute(
        "DELETE FROM sublessor_call_payment_log_201409 WHERE id IN (%s, %s, %s)", tuple(deleted)
    )
    later = seed.payment(7, 4000)
    with caplog.at_level(logging.WARNING, logger=recognise.__name__):
        counts = recognise_until_caught_up(
            accounting_conn, batch_size=2
        )  # a full page of them first

    assert counts.late_settled_dropped == 3 and counts.late_settled_recognised == 0
    assert counts.payments_processed == 1 and counts.batches == 3  # 2 dropped; 1 and later; none
    assert seed.watched() == [stuck]
    assert seed.income() == [(later, contract, 4000)] and seed.cursor() == later
    vanished = [r.getMessage() for r in caplog.records if "no longer exists" in r.getMessage()]
    assert vanished == [f"Watched payment {p} no longer exists; dropping it" for p in deleted]

    before = seed.snapshot()
    again = recognise_until_caught_up(accounting_conn, batch_size=2)
    assert again.batches == 1 and again.late_settled_dropped == 0
    assert seed.snapshot() == before
