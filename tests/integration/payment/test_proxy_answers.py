"""What a proxy in front of the payment center may do to an answer: compress it, redirect, change its status.

Only an HTTP 200 with a plain (identity) JSON body is classified; anything else
is unknown, so the order stays pending and keeps its order id.
"""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls
from sublessor_billing.payments.outcomes import ORDER_ID_MIN, UnknownOutcome
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration


def run_charging(target):
    conn = connect(target)
    try:
        return charge_valid_calls(
            conn, PaymentApiHook(timeout_ms=2000).get_async_conn(), price_fen=PRICE_FEN, workers=2,
            flush_seconds=0.05,
        )  # fmt: skip
    finally:
        conn.close()


def test_a_compressing_proxy_answers_plain_because_we_ask_for_identity(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(1, 10 * PRICE_FEN)
    (call,) = seed_calls(1, 1)
    gzip = payment_center.add_fault(Fault("gzip_after", path="/trade/charge"))
    report = run_charging(user_prop_target)
    assert report.counts["success"] == 1 and report.retried == 0
    assert gzip.fired == 1  # the proxy saw the request, and left the answer plain
    assert payment_rows(user_prop_target)[call]["status"] == "success"


def test_a_compressed_answer_is_unknown_and_names_the_header(billing_env, payment_center):
    payment_center.set_account(1, 10 * PRICE_FEN)
    payment_center.add_fault(Fault("gzip_forced_after", path="/trade/charge"))
    with pytest.raises(UnknownOutcome, match="Content-Encoding 'gzip'"):
        PaymentApiHook(timeout_ms=2000).charge(
            order_id=ORDER_ID_MIN, user_id=1, amount=PRICE_FEN, subject="s"
        )
    assert payment_center.balance(1) == 9 * PRICE_FEN  # charged: unknown, never "failed"


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed_and_the_order_stays_pending(
    billing_env, user_prop_target, payment_center, seed_calls, status
):
    payment_center.set_account(1, 10 * PRICE_FEN)
    (call,) = seed_calls(1, 1)
    payment_center.add_fault(Fault("redirect_before", path="/trade/charge", status=status))
    # the target a followed redirect would reach: a refusal for money
    payment_center.add_fault(Fault("status_before", path="/moved", status=405, body={"code": 1001}))
    with pytest.raises(
        ChargesPending, match=f"HTTP {status}.*fix the host of connection 'payment_api'"
    ):
        run_charging(user_prop_target)
    row = payment_rows(user_prop_target)[call]
    assert (row["status"], row["result_code"]) == ("pending", None)
    assert "/moved" not in payment_center.request_counts  # the signed body went nowhere else
    assert payment_center.balance(1) == 10 * PRICE_FEN


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_4xx_answer_with_a_code_stays_pending_and_is_not_classified(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls, when
):
    payment_center.set_account(1, 10 * PRICE_FEN)
    (call,) = seed_calls(1, 1)
    payment_center.add_fault(
        Fault(f"status_{when}", path="/trade/charge", status=405, body={"code": 1001})
    )
    with pytest.raises(ChargesPending, match="HTTP 405"):
        run_charging(user_prop_target)
    row = payment_rows(user_prop_target)[call]
    assert (row["status"], row["result_code"]) == ("pending", None)
    payment_center.clear_faults()
    assert run_charging(user_prop_target).counts["success"] == 1  # same order id, charged once
    assert payment_center.full_state()["charges"] == 1
