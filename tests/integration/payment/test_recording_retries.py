"""Recording a batch of answers that meets a lock wait (or deadlock) writes it again.

Charge shards record at the same time: two batches can deadlock on the gap locks
of sublessor_offline_event. The batch is rolled back by the server; it is written
again (each pending row is re-read FOR UPDATE), not left to a task retry.
"""

from __future__ import annotations

import logging
import threading

import pytest
from support.waiting import wait_until

from sublessor_billing.db import transaction
from sublessor_billing.db.connect import connect
from sublessor_billing.payments import store
from sublessor_billing.payments.outcomes import Outcome

pytestmark = pytest.mark.integration
ORDER = 820000000001


def test_a_lock_wait_while_recording_is_written_again_not_failed(
    user_prop_conn, user_prop_target, caplog
) -> None:
    with user_prop_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount,"
            " subject, status) VALUES (%s, 'c1', 7, 4000, 's', 'pending')",
            (ORDER,),
        )
    user_prop_conn.commit()
    caplog.set_level(logging.WARNING, logger=transaction.__name__)
    other = connect(user_prop_target)  # another pass holds the row
    recorder = connect(user_prop_target)
    with recorder.cursor() as cur:
        cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
    result: dict = {}

    def record() -> None:
        try:
            result["value"] = store.record_outcomes(
                recorder, [Outcome(ORDER, 7, "success", 4000, 0, "ok", 1000)], price_fen=4000
            )
        except BaseException as exc:  # surfaced below
            result["error"] = exc

    try:
        with other.cursor() as cur:
            cur.execute(
                "SELECT id FROM sublessor_call_payment_log_201409 WHERE id = %s FOR UPDATE",
                (ORDER,),
            )
        writer = threading.Thread(target=record)
        writer.start()
        wait_until(
            lambda: any(
                "Recording a batch of 1 answer(s) was rolled back by MySQL (1205" in r.getMessage()
                for r in caplog.records
            ),
            30,
            "the first attempt to meet the lock wait timeout",
        )
        other.rollback()  # the other pass lets go
        writer.join(30)
    finally:
        other.close()
        recorder.close()
    assert "error" not in result, result.get("error")
    settled, _ = result["value"]
    assert [o.order_id for o in settled] == [ORDER]
    with user_prop_conn.cursor() as cur:
        cur.execute("SELECT status FROM sublessor_call_payment_log_201409 WHERE id = %s", (ORDER,))
        assert cur.fetchall() == (("success",),)
    user_prop_conn.rollback()
