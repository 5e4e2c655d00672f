"""db.transaction and db.job_cursor against a real MariaDB: commit, rollback, retry."""

from datetime import datetime, timedelta

import MySQLdb
import pytest

from sublessor_billing.db import job_cursor
from sublessor_billing.db.connect import connect
from sublessor_billing.db.transaction import (
    DEADLOCK,
    read_only,
    retry_on_lock_conflict,
    transaction,
)


def _position(target, name):
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            return job_cursor.read(cur, name)
    finally:
        conn.close()


def test_a_block_that_ends_commits(user_prop_target):
    conn = connect(user_prop_target)
    with transaction(conn) as cur:
        job_cursor.save(cur, "t", 5)
    conn.close()
    assert _position(user_prop_target, "t").position_id == 5


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_block_that_raises_rolls_back_and_reraises(user_prop_target, error):
    conn = connect(user_prop_target)
    with pytest.raises(type(error)), transaction(conn) as cur:
        job_cursor.save(cur, "t", 5)
        raise error
    conn.close()
    assert _position(user_prop_target, "t") is None


def test_a_failed_rollback_leaves_the_phase_error_standing(user_prop_target):
    conn = connect(user_prop_target)
    with pytest.raises(RuntimeError, match="the phase"), transaction(conn) as cur:
        job_cursor.save(cur, "t", 5)
        conn.close()  # the rollback after this fails
        raise RuntimeError("the phase")
    assert _position(user_prop_target, "t") is None


def test_isolation_applies_to_the_transaction_and_an_unknown_level_is_refused(user_prop_target):
    conn = connect(user_prop_target)
    with transaction(conn, isolation="READ COMMITTED") as cur:
        job_cursor.read(cur, "t")  # starts the InnoDB transaction
        cur.execute(
            "SELECT 1 FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = "
            "CONNECTION_ID() AND trx_isolation_level = 'READ COMMITTED'"
        )
        assert cur.fetchone() == (1,)
    with (
        pytest.raises(ValueError, match="isolation"),
        transaction(conn, isolation="READ UNCOMMITTED; DROP TABLE x"),
    ):
        pass
    conn.close()


def test_job_cursor_lock_of_a_missing_row_says_what_to_do(user_prop_target):
    conn = connect(user_prop_target)
    with pytest.raises(RuntimeError, match="rerun the task"), transaction(conn) as cur:
        job_cursor.lock(cur, "absent")
    conn.close()


def test_ensure_keeps_an_existing_row_and_move_sets_it(user_prop_target):
    conn = connect(user_prop_target)
    with transaction(conn) as cur:
        job_cursor.ensure(cur, "t", 1)
        job_cursor.ensure(cur, "t", 9)
        assert job_cursor.lock(cur, "t").position_id == 1
        job_cursor.move(cur, "t", 3)
    conn.close()
    assert _position(user_prop_target, "t").position_id == 3


def test_retry_runs_the_phase_again_on_a_deadlock_only():
    calls = []

    def deadlocks_once():
        calls.append(1)
        if len(calls) == 1:
            raise MySQLdb.OperationalError(DEADLOCK, "Deadlock found")
        return "done"

    assert retry_on_lock_conflict(deadlocks_once, attempts=3, what="phase") == "done"
    assert len(calls) == 2

    def duplicate():
        calls.append(1)
        raise MySQLdb.IntegrityError(1062, "Duplicate entry")

    calls.clear()
    with pytest.raises(MySQLdb.IntegrityError):
        retry_on_lock_conflict(duplicate, attempts=3, what="phase")
    assert len(calls) == 1


def test_retry_gives_up_after_its_attempts():
    calls = []

    def always():
        calls.append(1)
        raise MySQLdb.OperationalError(1205, "Lock wait timeout exceeded")

    with pytest.raises(MySQLdb.OperationalError):
        retry_on_lock_conflict(always, attempts=3, what="phase")
    assert len(calls) == 3


def test_a_phase_whose_rollback_failed_is_not_run_again(user_prop_target):
    """A lock wait timeout undoes only its statement: without a rollback, a rerun builds on half."""
    conn = connect(user_prop_target)
    calls = []

    def phase():
        calls.append(1)
        with transaction(conn) as cur:
            job_cursor.save(cur, "t", len(calls))
            conn.close()  # the rollback that follows fails
            raise MySQLdb.OperationalError(1205, "Lock wait timeout exceeded")

    with pytest.raises(MySQLdb.OperationalError) as raised:
        retry_on_lock_conflict(phase, attempts=3, what="phase")
    assert len(calls) == 1 and raised.value.rollback_failed is True
    assert _position(user_prop_target, "t") is None


def test_move_id_and_save_time_each_leave_the_other_position_alone(user_prop_target):
    conn = connect(user_prop_target)
    when = datetime(2026, 1, 2, 3, 4, 5)
    with transaction(conn) as cur:
        job_cursor.save_time(cur, "t", when)  # creates the row: no position_id yet
        job_cursor.move_id(cur, "t", 7)
        job_cursor.save_time(cur, "t", when + timedelta(hours=1))
    conn.close()
    assert _position(user_prop_target, "t") == (7, when + timedelta(hours=1))


def test_read_only_rolls_back_so_a_read_lock_is_released_and_the_next_read_is_current(
    user_prop_target,
):
    conn = connect(user_prop_target)
    other = connect(user_prop_target)
    with transaction(conn) as cur:
        job_cursor.save(cur, "t", 1)
    with read_only(conn) as cur:
        assert job_cursor.lock(cur, "t").position_id == 1  # FOR UPDATE: a row lock
    with transaction(other) as cur:  # would wait for the lock were it still held
        cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
        job_cursor.move_id(cur, "t", 2)
    with read_only(conn) as cur:
        assert job_cursor.read(cur, "t").position_id == 2
    conn.close()
    other.close()


def test_a_rollback_that_fails_on_a_live_connection_is_not_retried(
    user_prop_target,
):
    """Half a phase must never be committed by whoever uses the connection next."""
    conn = connect(user_prop_target)
    real_rollback, calls = conn.rollback, []

    def failing_rollback():
        raise MySQLdb.OperationalError(2014, "Commands out of sync")

    conn.rollback = failing_rollback

    def phase():
        calls.append(1)
        with transaction(conn) as cur:
            job_cursor.save(cur, "t", 1)
            raise MySQLdb.OperationalError(1205, "Lock wait timeout exceeded")

    with pytest.raises(MySQLdb.OperationalError):
        retry_on_lock_conflict(phase, attempts=3, what="phase")
    assert calls == [1]
    conn.rollback = real_rollback
    conn.rollback()
    conn.close()
    assert _position(user_prop_target, "t") is None
