"""The K3 wire format: answers parsed, filters quoted (and understood by the sandbox), urls built."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sublessor_billing.k3 import api
from sublessor_billing.sandbox.k3_filter import parse_bill_filter

SUCCESS = {
    "Result": {
        "ResponseStatus": {
            "IsSuccess": True,
            "Errors": [],
            "SuccessEntitys": [{"Id": 100234, "Number": "HT-2026-0001", "DIndex": 0}],
        },
        "Id": 100234,
        "Number": "HT-2026-0001",
    }
}
EXPIRED = {"Result": {"ResponseStatus": {"IsSuccess": False, "MsgCode": 1, "Errors": []}}}


def test_parse_save_success() -> None:
    assert api.parse_save(SUCCESS) == api.SaveResult(True, fid=100234, number="HT-2026-0001")


def test_parse_save_refusal_lists_k3_messages() -> None:
    answer = {
        "Result": {
            "ResponseStatus": {
                "IsSuccess": False,
                "Errors": [
                    {"FieldName": "FCustomerID", "Message": "客户不存在", "DIndex": 0},
                    {"FieldName": None, "Message": "单据保存失败", "DIndex": 0},
                ],
            }
        }
    }
    result = api.parse_save(answer)
    assert not result.success and not result.session_expired
    assert result.message() == "FCustomerID: 客户不存在; 单据保存失败"


def test_session_expiry_is_recognised_in_save_and_query_answers() -> None:
    assert api.parse_save(EXPIRED).session_expired
    assert api.is_session_expired([[EXPIRED]])
    assert not api.is_session_expired(SUCCESS)
    assert not api.is_session_expired([[100234, "HT-1"]])
    assert not api.is_session_expired([])


@pytest.mark.parametrize(
    "answer", [None, "<html>", {"Result": {}}, {"Result": {"ResponseStatus": {"IsSuccess": True}}}]
)
def test_unusable_save_answers_are_not_successes(answer) -> None:
    assert not api.parse_save(answer).success


def test_parse_query_rows() -> None:
    assert api.parse_query_rows([[1, "A"], [2, "B"]], 2) == [[1, "A"], [2, "B"]]
    assert api.parse_query_rows([], 2) == []
    with pytest.raises(ValueError, match="不存在"):
        api.parse_query_rows(
            [
                [
                    {
                        "Result": {
                            "ResponseStatus": {
                                "IsSuccess": False,
                                "Errors": [{"Message": "不存在"}],
                            }
                        }
                    }
                ]
            ],
            2,
        )
    with pytest.raises(ValueError, match="not a list of rows"):
        api.parse_query_rows({"Result": {}}, 2)


@pytest.mark.parametrize("answer", [[[100001]], [["x"]], [100001], [[1, "A", 3]], [None]])
def test_query_rows_of_another_width_are_refused_with_an_extract(answer) -> None:
    with pytest.raises(ValueError, match="not 2 field"):
        api.parse_query_rows(answer, 2)


def test_parse_bill_rows() -> None:
    assert api.parse_bill_rows([[7, "HT-1"], ["8", "HT-2"]]) == [(7, "HT-1"), (8, "HT-2")]
    for row in ([None, None], ["x", "HT-1"], [True, "HT-1"], [0, "HT-1"], [7, None]):
        with pytest.raises(ValueError, match="row"):
            api.parse_bill_rows([row])


@given(st.lists(st.text(min_size=1, max_size=32), min_size=1, max_size=5, unique=True))
def test_bill_number_filter_round_trips_through_the_sandbox(numbers: list[str]) -> None:
    assert parse_bill_filter(api.bill_number_filter(numbers)) == numbers


def test_bill_number_filter_quotes() -> None:
    assert api.bill_number_filter(["HT-1"]) == "FBillNo='HT-1'"
    assert api.bill_number_filter(["O'B", "X"]) == "FBillNo IN ('O''B','X')"
    with pytest.raises(ValueError, match="at least one bill number"):
        api.bill_number_filter([])


@pytest.mark.parametrize(
    "text",
    [
        "FBillNo IN ('a',)",
        "FBillNo IN ()",
        "FBillNo IN ('a' 'b')",
        "FBillNo='a' OR FBillNo='b'",
        "FBillNo LIKE 'a%'",
        "FBillNo='a''",
    ],
)
def test_sandbox_refuses_filters_k3_would_not_read_as_ours(text: str) -> None:
    with pytest.raises(ValueError, match="sandbox K3 understands only"):
        parse_bill_filter(text)


def test_bill_no_key_is_k3s_comparison() -> None:
    assert api.bill_no_key("HT-1  ") == api.bill_no_key("ht-1") == "ht-1"
    assert api.bill_no_key(" HT-1") != api.bill_no_key("HT-1")  # leading spaces count
