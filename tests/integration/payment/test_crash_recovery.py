"""SIGKILL the charging process at the dangerous moments; the next run ends exactly as an uncrashed one.

One charging pass runs in a child process (support.crash). Two ways to kill it: at
a phase of ``charge_valid_calls`` (its ``on_phase`` callback kills the child
there), and a sandbox fault that holds the answer after the money moved while the
test kills the child.
"""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, payment_rows
from support.crash import assert_killed, kill, start_child
from support.waiting import wait_until

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import charge_valid_calls
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration

# ``python -c CHARGE_ONCE PRICE_FEN [PHASE]``: one pass; with PHASE, it dies there. The
# payment center is the ``payment_api`` connection in the environment.
CHARGE_ONCE = """
import sys

from support.crash import kill_self, target_from_env

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import charge_valid_calls

price_fen, phase = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else None)
charge_valid_calls(
    connect(target_from_env()), PaymentApiHook(timeout_ms=60000).get_async_conn(),
    price_fen=price_fen, workers=4, batch_size=2, flush_seconds=0.05,
    on_phase=lambda name: kill_self() if name == phase else None,
)
"""


def start_charging(target, crash_at: str | None = None):
    return start_child(
        CHARGE_ONCE, str(PRICE_FEN), *([crash_at] if crash_at else []), target=target
    )


def rerun(target):
    conn = connect(target)
    try:
        return charge_valid_calls(
            conn, PaymentApiHook(timeout_ms=5000).get_async_conn(), price_fen=PRICE_FEN, workers=4
        )
    finally:
        conn.close()


def seed_two_sublessors(payment_center, seed_calls):
    payment_center.set_account(11, 2 * PRICE_FEN + 1)  # runs dry at its third call
    payment_center.set_account(12, 50 * PRICE_FEN)
    return seed_calls(11, 4), seed_calls(12, 3)


def assert_end_state(target, payment_center, calls11, calls12, order_ids):
    rows = payment_rows(target)
    assert {c: r["id"] for c, r in rows.items()} == order_ids, "order ids must survive the crash"
    assert [rows[c]["status"] for c in calls11] == [
        "success",
        "success",
        "insufficient",
        "insufficient",
    ]
    assert [rows[c]["status"] for c in calls12] == ["success"] * 3
    state = payment_center.full_state()
    assert state["double_charged"] == [] and state["charges"] == 5
    assert payment_center.balance(11) == 1 and payment_center.balance(12) == 47 * PRICE_FEN


@pytest.mark.parametrize("crash_at", ["allocated", "first_answer", "batch_recorded"])
def test_sigkill_at_a_phase_then_rerun(
    billing_env, user_prop_target, payment_center, seed_calls, crash_at
):
    calls11, calls12 = seed_two_sublessors(payment_center, seed_calls)
    child = start_charging(user_prop_target, crash_at)
    child.communicate(timeout=120)
    assert_killed(child)

    rows = payment_rows(user_prop_target)
    pending = [r for r in rows.values() if r["status"] == "pending"]
    assert len(rows) == 7
    order_ids = {c: r["id"] for c, r in rows.items()}
    charged_before = payment_center.full_state()["charges"]
    if crash_at == "allocated":
        assert charged_before == 0 and len(pending) == 7
    elif crash_at == "first_answer":
        assert len(pending) == 7
        assert charged_before >= 1  # money moved for at least one order nobody recorded
    else:  # one batch (2 answers) committed, the rest of the pass lost
        assert 1 <= 7 - len(pending) <= 2

    rerun(user_prop_target)
    assert_end_state(user_prop_target, payment_center, calls11, calls12, order_ids)


def test_sigkill_while_the_payment_center_holds_an_answer(
    billing_env, user_prop_target, payment_center, seed_calls
):
    calls11, calls12 = seed_two_sublessors(payment_center, seed_calls)
    payment_center.add_fault(
        Fault("delay_after", path="/trade/charge", seconds=30, match={"user_id": 11}, times=1)
    )
    child = start_charging(user_prop_target)
    try:
        wait_until(
            lambda: (
                payment_center.full_state()["in_flight"] >= 1
                and payment_center.balance(11) == PRICE_FEN + 1
            ),
            60,
            "the payment center to hold a charge it has made",
        )
        kill(child)
    finally:
        if child.poll() is None:
            kill(child)
    rows = payment_rows(user_prop_target)
    assert rows[calls11[0]]["status"] == "pending"  # charged, answer never recorded
    order_ids = {c: r["id"] for c, r in rows.items()}
    payment_center.clear_faults()

    rerun(user_prop_target)
    assert_end_state(user_prop_target, payment_center, calls11, calls12, order_ids)
