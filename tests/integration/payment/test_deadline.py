"""``payment_api_timeout`` bounds the WHOLE request: a service that drips its answer cannot hold it.

The sandbox's ``drip_after`` fault writes the answer one byte every ``seconds``
after the state changed: a deadline per socket read never fires on it.
"""

from __future__ import annotations

import time

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import ListingApiHook, PaymentApiHook
from sublessor_airflow.operators.charge import ChargeValidCallsOperator, TakeListingsOfflineOperator
from sublessor_billing.payments.offline import OfflinePending
from sublessor_billing.payments.outcomes import ORDER_ID_MIN, UnknownOutcome
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration

TIMEOUT_MS = 500
DRIP_S = 0.2  # per byte: an answer of ~40 bytes would take 8 s or more


def test_a_dripping_charge_answer_ends_at_the_deadline_as_unknown(billing_env, payment_center):
    payment_center.set_account(1, 10 * PRICE_FEN)
    payment_center.add_fault(Fault("drip_after", path="/trade/charge", seconds=DRIP_S))
    hook = PaymentApiHook(timeout_ms=TIMEOUT_MS)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match=f"no complete answer within {TIMEOUT_MS} ms from "):
        hook.charge(order_id=ORDER_ID_MIN, user_id=1, amount=PRICE_FEN, subject="s")
    # generous: ten times the deadline, still far below the drip's own length
    assert time.monotonic() - started < 10 * TIMEOUT_MS / 1000
    assert payment_center.balance(1) == 9 * PRICE_FEN  # the money moved: unknown, not failed


def test_a_dripping_listing_answer_ends_at_the_deadline(billing_env, listing_service):
    listing_service.add_fault(Fault("drip_after", path="/listing/offline_all", seconds=DRIP_S))
    hook = ListingApiHook(timeout_ms=TIMEOUT_MS)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match=f"no complete answer within {TIMEOUT_MS} ms from "):
        hook.offline_all(user_id=1, reason="dry", request_id="r-1")
    assert time.monotonic() - started < 10 * TIMEOUT_MS / 1000


def test_the_operator_bounds_a_dripping_answer_by_the_variable_and_sends_it_again(
    billing_env, user_prop_target, payment_center, seed_calls, airflow_variables
):
    airflow_variables("payment_api_timeout", TIMEOUT_MS)
    payment_center.set_account(1, 10 * PRICE_FEN)
    (call,) = seed_calls(1, 1)
    drip = payment_center.add_fault(
        Fault("drip_after", path="/trade/charge", seconds=DRIP_S, times=1)
    )
    result = ChargeValidCallsOperator(task_id="charge", workers=2).execute({})
    assert drip.fired == 1
    assert result["success"] == 1 and result["retried"] == 1 and result["pending"] == 0
    row = payment_rows(user_prop_target)[call]
    assert (row["status"], row["attempts"]) == ("success", 2)
    assert payment_center.full_state()["charges"] == 1


def test_the_offline_task_bounds_a_dripping_answer_by_the_variable(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls, airflow_variables
):
    airflow_variables("payment_api_timeout", TIMEOUT_MS)
    seed_calls(2, 1)  # no account: 1002, an offline decision
    assert ChargeValidCallsOperator(task_id="charge", workers=2).execute({})["failed"] == 1
    listing_service.add_fault(
        Fault("drip_after", path="/listing/offline_all", seconds=DRIP_S, times=1)
    )
    offline = TakeListingsOfflineOperator(task_id="offline", workers=2)
    with pytest.raises(OfflinePending, match=f"no complete answer within {TIMEOUT_MS} ms from "):
        offline.execute({})
    assert offline.execute({})["sent"] == 1  # the same request_id, answered as the first
    assert listing_service.offline_calls == {2: 1}
