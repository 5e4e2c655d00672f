"""A charging pass ends at its own deadline (below execution_timeout) with ChargesPending, never hangs.

Answers received before the deadline are recorded; what was in flight or not
started stays pending with its order id, re-sent by the next try.
"""

from __future__ import annotations

import threading
import time

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.calls.judge import judge_lock
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration


def test_a_pass_past_its_deadline_records_what_came_in_and_ends_pending(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(1, 10 * PRICE_FEN)
    payment_center.set_account(2, 10 * PRICE_FEN)
    (quick,) = seed_calls(1, 1)
    slow = seed_calls(2, 2)
    # answers for sublessor 2 would come long after the pass deadline (but within the request's)
    payment_center.add_fault(Fault("delay_before", path="/trade/charge", match={"user_id": 2},
                                   seconds=120))  # fmt: skip
    conn = connect(user_prop_target)
    try:
        with pytest.raises(ChargesPending, match="2 charge"):
            charge_valid_calls(
                conn, PaymentApiHook(timeout_ms=300_000).get_async_conn(), price_fen=PRICE_FEN,
                workers=4, flush_seconds=0.05, deadline_s=3,
            )  # fmt: skip
    finally:
        conn.close()
    rows = payment_rows(user_prop_target)
    assert rows[quick]["status"] == "success"
    assert [rows[c]["status"] for c in slow] == ["pending", "pending"]


def test_the_pass_deadline_counts_from_the_start_of_the_pass_not_of_the_sending(
    billing_env, user_prop_target, payment_center, seed_calls
):
    """Waiting for the judge's lock (or flagging the history) used to come on top of the
    sending deadline, pushing the task into its hard execution_timeout mid-sending."""
    payment_center.set_account(2, 10 * PRICE_FEN)
    seed_calls(2, 1)
    payment_center.add_fault(Fault("delay_before", path="/trade/charge", seconds=120))
    judge, conn = connect(user_prop_target), connect(user_prop_target)
    try:
        with judge_lock(judge, 5):
            release = threading.Timer(3.0, judge.close)  # the judge holds it 3 s
            release.start()
            started = time.monotonic()
            with pytest.raises(ChargesPending, match="1 charge"):
                charge_valid_calls(
                    conn, PaymentApiHook(timeout_ms=300_000).get_async_conn(), price_fen=PRICE_FEN,
                    workers=4, flush_seconds=0.05, deadline_s=4,
                )  # fmt: skip
            elapsed = time.monotonic() - started
            release.join()
    finally:
        conn.close()
    assert 3 <= elapsed < 6, f"the pass took {elapsed:.1f} s for a deadline of 4 s"
