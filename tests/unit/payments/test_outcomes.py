from __future__ import annotations

import pytest

from sublessor_billing.payments.outcomes import (
    Outcome,
    PaymentStatus,
    PendingOrder,
    classify_charge,
    offline_reason,
    offline_request_id,
    offline_signal,
)

ORDER = PendingOrder(order_id=820000000007, sublessor_id=9, amount=4000, subject="400 call c-7")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"code": 0, "balance": 100}, PaymentStatus.SUCCESS, 0),
        ({"code": 0, "balance": 100, "duplicate": True}, PaymentStatus.SUCCESS, 0),
        ({"code": 1001, "balance": 5}, PaymentStatus.INSUFFICIENT, 1001),
        ({"code": 1002, "message": "frozen"}, PaymentStatus.FAILED, 1002),
        ({"code": 1004}, PaymentStatus.FAILED, 1004),
        ({"code": 1003}, PaymentStatus.PENDING, 1003),
        ({"code": 1005, "message": "?"}, PaymentStatus.PENDING, 1005),
        ({"message": "no code"}, PaymentStatus.PENDING, None),
        ({"code": True}, PaymentStatus.PENDING, None),
        (["not", "a", "dict"], PaymentStatus.PENDING, None),
    ],
)
def test_codes_map_to_statuses(body, status, code):
    outcome = classify_charge(ORDER, body)
    assert (outcome.status, outcome.result_code) == (status, code)
    assert outcome.amount == 4000 and outcome.order_id == ORDER.order_id
    # pending says why; a 1004 is flagged for a person to check; nothing else carries an error
    assert (outcome.error is not None) == (status == PaymentStatus.PENDING or code == 1004)


def test_undocumented_code_and_codeless_answer_name_where_they_came_from():
    where = "connection 'payment_api' at http://127.0.0.1:9/trade/charge"
    assert where in classify_charge(ORDER, {"code": 1005, "message": "?"}, where).error
    assert where in classify_charge(ORDER, {"message": "no code"}, where).error


def test_order_ids_below_the_range_are_refused_with_the_fix():
    from sublessor_billing.payments.outcomes import (
        ORDER_ID_MIN,
        OrderIdOutOfRange,
        check_order_ids,
    )

    check_order_ids([ORDER_ID_MIN, ORDER_ID_MIN + 5])
    with pytest.raises(OrderIdOutOfRange) as raised:
        check_order_ids([ORDER_ID_MIN, 1001, 17])
    assert raised.value.order_ids == [17, 1001]
    assert "17, 1001" in str(raised.value)
    assert "release-held --yes" in str(raised.value)
    assert "never lowers it" in str(raised.value) and "--above" in str(raised.value)


def test_failed_keeps_the_reason_and_1003_is_flagged():
    assert classify_charge(ORDER, {"code": 1002, "message": "frozen"}).message == "frozen"
    assert classify_charge(ORDER, {"code": 1003}).bad_signature
    assert not classify_charge(ORDER, {"code": 1005}).bad_signature


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"code": 0, "balance": 3999}, True),
        ({"code": 0, "balance": 4000}, False),
        ({"code": 0}, None),
        ({"code": 1001, "balance": 0}, True),
        ({"code": 1002}, True),
        ({"code": 1004}, None),
        ({"code": 1003}, None),
    ],
)
def test_offline_rule_uses_the_price_of_one_call(body, expected):
    assert offline_signal(classify_charge(ORDER, body), price_fen=4000) is expected


def test_request_id_is_stable_per_trigger_and_fits_the_column():
    assert offline_request_id(820000000007) == offline_request_id(820000000007)
    assert offline_request_id(820000000007) != offline_request_id(820000000008)
    assert len(offline_request_id(2**63)) <= 64


@pytest.mark.parametrize(
    ("body", "status", "code", "balance"),
    [
        ({"code": 0, "balance": "99999999999999999999"}, PaymentStatus.SUCCESS, 0, None),
        ({"code": 0, "balance": -(2**63) - 1}, PaymentStatus.SUCCESS, 0, None),
        ({"code": 0, "balance": 2**63 - 1}, PaymentStatus.SUCCESS, 0, 2**63 - 1),
        ({"code": 2**31}, PaymentStatus.PENDING, None, None),
        ({"code": "1" * 5000}, PaymentStatus.PENDING, None, None),
    ],
)
def test_numbers_the_payment_log_cannot_hold_are_not_taken_as_answers(body, status, code, balance):
    """balance_after is a BIGINT, result_code an INT: one odd answer must not fail a batch."""
    outcome = classify_charge(ORDER, body)
    assert (outcome.status, outcome.result_code, outcome.balance) == (status, code, balance)


def test_a_message_that_is_not_valid_unicode_is_stored_readable():
    outcome = classify_charge(ORDER, {"code": 1002, "message": "frozen \ud800 " + "x" * 300})
    assert outcome.message.encode("utf-8") and outcome.message.startswith("frozen ? x")
    assert len(outcome.message) == 255


def test_the_offline_reason_is_built_from_ascii_fields_only():
    """The payment center's free-text message (often Chinese) never reaches the signed ``reason``."""
    refused = Outcome(820000000007, 3, PaymentStatus.INSUFFICIENT, 4000, result_code=1001,
                      message="余额不足 \\ \"x\"\n", balance=1200)  # fmt: skip
    assert offline_reason(refused) == (
        "order 820000000007 of sublessor 3 refused with code 1001, balance 1200 fen"
    )
    frozen = Outcome(
        820000000008, 3, PaymentStatus.FAILED, 4000, result_code=1002, message="账户冻结"
    )
    assert offline_reason(frozen) == "order 820000000008 of sublessor 3 refused with code 1002"
    assert offline_reason(frozen).isascii()
