"""The sandboxes answer exactly as payment-api.md and listing-api.md say (over real HTTP)."""

from __future__ import annotations

import pytest
import requests
from support.connections import APP_ID, LISTING_KEY, PAYMENT_KEY

from sublessor_billing.sandbox.server import Fault
from sublessor_billing.signing import sign_body

pytestmark = pytest.mark.integration


def post(server, path, fields, key=PAYMENT_KEY):
    resp = requests.post(server.url + path, json=sign_body(fields, APP_ID, key), timeout=10)
    return resp.status_code, resp.json()


def charge(server, order_id, user_id=1, amount=4000, subject="400 call c-1", key=PAYMENT_KEY):
    fields = {"order_id": order_id, "user_id": user_id, "amount": amount, "subject": subject}
    return post(server, "/trade/charge", fields, key)[1]


def test_wrong_signature_is_1003_and_changes_nothing(payment_center):
    payment_center.set_account(1, 10000)
    assert charge(payment_center, 820000000001, key="wrong")["code"] == 1003
    assert payment_center.balance(1) == 10000
    assert (
        post(payment_center, "/trade/query", {"order_id": 820000000001})[1]["status"] == "not_found"
    )


def test_repeated_order_id_answers_the_first_result_and_never_charges_twice(payment_center):
    payment_center.set_account(1, 10000)
    first = charge(payment_center, 820000000001)
    again = charge(payment_center, 820000000001)
    assert first == {"code": 0, "message": "ok", "balance": 6000}
    assert again == {**first, "duplicate": True}
    assert payment_center.balance(1) == 6000 and payment_center.ledger == {820000000001: 1}


def test_reused_order_id_with_other_parameters_is_1004(payment_center):
    payment_center.set_account(1, 10000)
    charge(payment_center, 820000000001)
    assert charge(payment_center, 820000000001, amount=4001)["code"] == 1004
    assert charge(payment_center, 820000000001, subject="other")["code"] == 1004
    assert payment_center.balance(1) == 6000


def test_refusals_and_query_statuses(payment_center):
    payment_center.set_account(1, 5000)
    payment_center.set_account(2, 99999, frozen=True)
    assert charge(payment_center, 820000000001)["balance"] == 1000
    assert charge(payment_center, 820000000002) == {
        "code": 1001,
        "message": "insufficient balance",
        "balance": 1000,
    }
    assert charge(payment_center, 820000000003, user_id=2)["code"] == 1002
    assert charge(payment_center, 820000000004, user_id=3)["code"] == 1002

    def query(order_id):
        return post(payment_center, "/trade/query", {"order_id": order_id})[1]

    assert query(820000000001) == {
        "code": 0,
        "status": "success",
        "result_code": 0,
        "balance": 1000,
        "amount": 4000,
        "user_id": 1,
    }
    assert query(820000000002)["status"] == "failed" and query(820000000002)["result_code"] == 1001
    assert query(820000000003)["result_code"] == 1002
    assert query(820000000009) == {"code": 0, "status": "not_found"}


def test_order_ids_below_the_range_are_refused(payment_center):
    payment_center.set_account(1, 10000)
    fields = {"order_id": 819999999999, "user_id": 1, "amount": 4000, "subject": "400 call c-1"}
    assert post(payment_center, "/trade/charge", fields) == (
        400,
        {"code": 1005, "message": "order_id below 820000000000 is not yours"},
    )
    assert payment_center.balance(1) == 10000


def test_error_after_moves_money_and_error_before_does_not(payment_center):
    payment_center.set_account(1, 10000)
    payment_center.add_fault(Fault("error_before", path="/trade/charge", nth=[1]))
    payment_center.add_fault(Fault("error_after", path="/trade/charge", nth=[2]))
    body = sign_body(
        {"order_id": 820000000001, "user_id": 1, "amount": 4000, "subject": "s"},
        APP_ID,
        PAYMENT_KEY,
    )
    assert (
        requests.post(payment_center.url + "/trade/charge", json=body, timeout=5).status_code == 500
    )
    assert payment_center.balance(1) == 10000
    assert (
        requests.post(payment_center.url + "/trade/charge", json=body, timeout=5).status_code == 500
    )
    assert payment_center.balance(1) == 6000
    assert (
        requests.post(payment_center.url + "/trade/charge", json=body, timeout=5).json()[
            "duplicate"
        ]
        is True
    )


def test_fault_control_over_http(payment_center):
    resp = requests.post(
        payment_center.url + "/_sandbox/faults",
        json={"action": "garbage_before", "times": 1},
        timeout=5,
    )
    assert resp.json()["faults"][0]["action"] == "garbage_before"
    payment_center.set_account(1, 10000)
    resp = requests.post(payment_center.url + "/trade/charge", json={}, timeout=5)
    assert resp.headers["Content-Type"].startswith("text/html")
    requests.delete(payment_center.url + "/_sandbox/faults", timeout=5)
    assert requests.get(payment_center.url + "/_sandbox/state", timeout=5).json()["faults"] == []


def test_offline_all_is_idempotent_by_request_id(listing_service):
    listing_service.set_listings(7, 3)

    def offline(request_id, key=LISTING_KEY):
        return post(
            listing_service,
            "/listing/offline_all",
            {"user_id": 7, "reason": "dry", "request_id": request_id},
            key,
        )[1]

    assert offline("r-1", key="wrong")["code"] == 1003
    assert listing_service.online[7] == 3
    assert offline("r-1") == {"code": 0, "offlined": 3}
    listing_service.set_listings(7, 2)
    assert offline("r-1") == {"code": 0, "offlined": 3}
    assert listing_service.online[7] == 2 and listing_service.offline_calls == {7: 1}
    assert offline("r-2") == {"code": 0, "offlined": 2}


@pytest.mark.parametrize(
    ("name", "value"), [("order_id", "820000000001"), ("user_id", "1"), ("amount", 4000.0)]
)
def test_charge_refuses_numbers_that_are_not_json_integers(payment_center, name, value):
    payment_center.set_account(1, 10000)
    fields = {"order_id": 820000000001, "user_id": 1, "amount": 4000, "subject": "s", name: value}
    status, body = post(payment_center, "/trade/charge", fields)
    assert (status, body["code"]) == (400, 1000) and name in body["message"]
    assert payment_center.balance(1) == 10000 and payment_center.orders == {}
    status, body = post(payment_center, "/trade/query", {"order_id": "820000000001"})
    assert (status, body["code"]) == (400, 1000)


def test_query_has_result_code_and_balance_for_every_known_order(payment_center):
    payment_center.set_account(2, 777, frozen=True)
    assert charge(payment_center, 820000000005, user_id=2)["code"] == 1002
    assert charge(payment_center, 820000000006, user_id=3)["code"] == 1002

    def query(order_id):
        return post(payment_center, "/trade/query", {"order_id": order_id})[1]

    frozen, missing = query(820000000005), query(820000000006)
    assert (frozen["status"], frozen["result_code"], frozen["balance"]) == ("failed", 1002, 777)
    assert (missing["status"], missing["result_code"], missing["balance"]) == ("failed", 1002, 0)


def test_offline_all_refuses_a_user_id_that_is_not_a_json_integer(listing_service):
    listing_service.set_listings(7, 3)
    fields = {"user_id": "7", "reason": "dry", "request_id": "r-s"}
    status, body = post(listing_service, "/listing/offline_all", fields, LISTING_KEY)
    assert (status, body["code"]) == (400, 1000)
    assert listing_service.online[7] == 3 and listing_service.requests == {}
