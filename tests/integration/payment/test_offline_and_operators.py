"""Offline decisions end to end, and the two operators as Airflow runs them (Variables, Connections)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payment_fixtures import PRICE_FEN, offline_rows, payment_rows

from sublessor_airflow.operators.charge import ChargeValidCallsOperator, TakeListingsOfflineOperator
from sublessor_billing.payments.offline import OfflinePending
from sublessor_billing.payments.outcomes import PaymentConfigurationError
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration


def charge_task():
    return ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)


def offline_task():
    return TakeListingsOfflineOperator(task_id="take_listings_offline", workers=2)


def test_operators_charge_decide_and_offline_once(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls
):
    payment_center.set_account(21, PRICE_FEN * 2 + 500)
    listing_service.set_listings(21, 4)
    seed_calls(21, 5)
    result = charge_task().execute({})
    assert result["success"] == 2 and result["insufficient"] == 3
    assert result["charged_fen"] == 2 * PRICE_FEN and result["charged_yuan"] == "80"
    events = offline_rows(user_prop_target)
    assert len(events) == 1, "one decision per sublessor per pass"
    assert events[0]["status"] == "pending"

    listing_service.add_fault(Fault("error_after", path="/listing/offline_all", times=1))
    with pytest.raises(OfflinePending, match=events[0]["request_id"]):
        offline_task().execute({})
    assert offline_task().execute({})["sent"] == 1
    assert offline_task().execute({})["sent"] == 0
    assert listing_service.offline_calls == {21: 1} and listing_service.online[21] == 0
    (event,) = offline_rows(user_prop_target)
    assert event["status"] == "done" and event["offlined"] == 4 and event["attempts"] == 2

    # a later pass, after delivery, that is still refused: a new decision
    seed_calls(21, 1)
    assert charge_task().execute({})["insufficient"] == 1
    assert [e["status"] for e in offline_rows(user_prop_target)] == ["done", "pending"]


def test_no_second_decision_while_one_is_undelivered(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(22, 0)
    seed_calls(22, 2)
    charge_task().execute({})
    seed_calls(22, 2)
    charge_task().execute({})
    assert len(offline_rows(user_prop_target)) == 1


def test_decision_made_stale_by_a_top_up_is_superseded_not_sent(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls
):
    payment_center.set_account(26, PRICE_FEN + 100)
    payment_center.set_account(27, 0)
    listing_service.set_listings(26, 3)
    listing_service.set_listings(27, 2)
    seed_calls(26, 2)  # success leaving 100 fen, then insufficient: one decision
    seed_calls(27, 1)  # refused: a decision that stays current
    charge_task().execute({})
    listing_service.add_fault(Fault("error_before", path="/listing/offline_all", times=10))
    with pytest.raises(OfflinePending):
        offline_task().execute({})

    payment_center.set_account(26, 10 * PRICE_FEN)  # topped up while the service was down
    seed_calls(26, 1)
    assert charge_task().execute({})["success"] == 1  # balance 9 calls' price
    events = {e["sublessor_id"]: e for e in offline_rows(user_prop_target)}
    assert events[26]["status"] == "superseded", "superseded with the answer that made it stale"
    listing_service.clear_faults()
    assert offline_task().execute({})["sent"] == 1
    assert listing_service.online == {26: 3, 27: 0}
    events = {e["sublessor_id"]: e for e in offline_rows(user_prop_target)}
    assert events[26]["status"] == "superseded" and events[27]["status"] == "done"
    latest = max(
        r["id"] for r in payment_rows(user_prop_target).values() if r["sublessor_id"] == 26
    )
    assert f"order {latest} left at least one call's price" in events[26]["last_error"]


def test_offline_error_names_the_connection_and_address(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls
):
    seed_calls(28, 1)  # no account: 1002, a decision
    charge_task().execute({})
    listing_service.add_fault(  # an HTTP 200 JSON answer that is not code 0
        Fault("status_before", path="/listing/offline_all", status=200, body={"code": 1009})
    )
    with pytest.raises(
        OfflinePending,
        match=r"connection 'listing_api' at http://127\.0\.0\.1:\d+/listing/offline_all",
    ):
        offline_task().execute({})


def test_a_listing_bad_signature_fails_without_retries_and_keeps_the_decision_pending(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls
):
    seed_calls(29, 1)  # no account: 1002, a decision
    charge_task().execute({})
    listing_service.apps.clear()  # answers 1003 (bad signature) to anyone
    with pytest.raises(AirflowFailException, match="Admin -> Connections -> listing_api") as raised:
        offline_task().execute({})
    assert isinstance(raised.value.__cause__, OfflinePending)
    (event,) = offline_rows(user_prop_target)
    assert event["status"] == "pending" and "1003" in event["last_error"]
    assert listing_service.offline_calls == {}


def test_low_balance_after_success_triggers_at_the_current_price(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(23, PRICE_FEN + PRICE_FEN // 2)
    seed_calls(23, 1)
    charge_task().execute({})
    (event,) = offline_rows(user_prop_target)
    rows = payment_rows(user_prop_target)
    assert event["trigger_order_id"] == next(iter(rows.values()))["id"]
    assert "below one call's price" in event["reason"]


def test_bad_key_fails_loudly_and_leaves_calls_pending(
    billing_env, user_prop_target, payment_center, seed_calls, airflow_connections
):
    import json

    conn = json.loads(billing_env["AIRFLOW_CONN_PAYMENT_API"])
    airflow_connections("payment_api", {**conn, "password": "not-the-key"})
    payment_center.set_account(24, 10 * PRICE_FEN)
    seed_calls(24, 3)
    with pytest.raises(AirflowFailException, match="payment_api") as raised:
        charge_task().execute({})
    assert isinstance(raised.value.__cause__, PaymentConfigurationError)
    # no retry burnt on a wrong key: one request, the sublessor's later orders not sent
    assert payment_center.request_counts == {"/trade/charge": 1}
    assert {r["status"] for r in payment_rows(user_prop_target).values()} == {"pending"}
    assert payment_center.balance(24) == 10 * PRICE_FEN
    assert "not-the-key" not in str(payment_rows(user_prop_target))


def test_a_down_payment_center_names_the_connection(
    billing_env, user_prop_target, payment_center, seed_calls
):
    seed_calls(25, 1)
    payment_center.stop()
    with pytest.raises(
        Exception, match=r"order \d+: cannot reach connection 'payment_api' at http://127\.0\.0\.1"
    ):
        charge_task().execute({})
    assert {r["status"] for r in payment_rows(user_prop_target).values()} == {"pending"}


def test_a_pass_that_takes_many_sublessors_offline_names_twenty_of_them(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls, caplog
):
    """Counts are whole; the ids in a result (XCom) or a log line are at most 20."""
    subs = range(400, 450)
    for sub in subs:  # no account: 1002 for each, a decision each
        seed_calls(sub, 1)
    result = charge_task().execute({})
    assert (result["failed"], result["offline_decisions"]) == (50, 50)
    assert len(result["offline_sublessors"]) == 20 and set(result["offline_sublessors"]) <= set(
        subs
    )

    listing_service.add_fault(Fault("error_before", path="/listing/offline_all"))
    caplog.clear()
    with pytest.raises(OfflinePending, match=r"^50 offline decision\(s\) not delivered") as failed:
        offline_task().execute({})
    assert "; and 30 more." in str(failed.value)
    (line,) = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Offline result")
    ]
    assert line.count("sublessor-offline-") == 20 and "'still_pending': 50" in line

    listing_service.clear_faults()
    caplog.clear()
    result = offline_task().execute({})
    assert (result["sent"], len(result["sublessors_offline"])) == (50, 20)
    assert result["pending_request_ids"] == [] and result["still_pending"] == 0
    (line,) = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Offline result")
    ]
    assert len(line) < 600, line
