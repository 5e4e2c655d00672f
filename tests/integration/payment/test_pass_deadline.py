"""A charging pass ends at its own deadline (below execution_timeout) with ChargesPending, never hangs.

Answers received before the deadline are recorded; what was in flight or not
started stays pending with its order id, re-sent by the next try.
"""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
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
                conn, PaymentApiHook(timeout_ms=300_000).get_conn(), price_fen=PRICE_FEN,
                workers=4, flush_seconds=0.05, deadline_s=3,
            )  # fmt: skip
    finally:
        conn.close()
    rows = payment_rows(user_prop_target)
    assert rows[quick]["status"] == "success"
    assert [rows[c]["status"] for c in slow] == ["pending", "pending"]
