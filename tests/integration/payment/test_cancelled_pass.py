"""A pass cancelled by SIGINT (Airflow stopping the task) still writes the answers it received."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import charge_valid_calls
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration


def test_answers_received_before_a_sigint_are_recorded(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(1, 10 * PRICE_FEN)
    payment_center.set_account(2, 10 * PRICE_FEN)
    (answered,) = seed_calls(1, 1)
    (held,) = seed_calls(2, 1)
    payment_center.add_fault(Fault("delay_before", path="/trade/charge", match={"user_id": 2},
                                   seconds=120))  # fmt: skip

    def interrupt_after_the_first_answer(phase: str) -> None:
        if phase == "first_answer":  # the answer is buffered, far from its flush
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)

    # Python's own SIGINT handler, whatever an earlier test in this process installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    conn = connect(user_prop_target)
    try:
        with pytest.raises(KeyboardInterrupt):
            charge_valid_calls(
                conn, PaymentApiHook(timeout_ms=300_000).get_async_conn(), price_fen=PRICE_FEN,
                workers=4, batch_size=500, flush_seconds=3600,
                on_phase=interrupt_after_the_first_answer,
            )  # fmt: skip
    finally:
        conn.close()
        signal.signal(signal.SIGINT, previous)
    rows = payment_rows(user_prop_target)
    assert (rows[answered]["status"], rows[held]["status"]) == ("success", "pending")
