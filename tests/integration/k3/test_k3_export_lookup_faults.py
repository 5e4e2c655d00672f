"""A look-up that fails creates nothing: K3's answer to ExecuteBillQuery is unusable -> the run stops."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException

from sublessor_airflow.hooks.k3_cloud import K3CloudError
from sublessor_billing.sandbox.k3_cloud import QUERY_PATH, Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ERROR_ANSWER = [
    [
        {
            "Result": {
                "ResponseStatus": {
                    "IsSuccess": False,
                    "ErrorCode": 500,
                    "Errors": [{"FieldName": None, "Message": "查询服务异常", "DIndex": 0}],
                }
            }
        }
    ]
]


def _http_500(k3) -> None:
    k3.add_fault(Fault("error_before", path=k3.path(QUERY_PATH)))


def _not_json(k3) -> None:
    k3.add_fault(Fault("garbage_before", path=k3.path(QUERY_PATH)))


FAULTS = [
    pytest.param(_http_500, "HTTP 500", id="http-500"),
    pytest.param(_not_json, "non-JSON", id="not-json"),
    pytest.param(lambda k3: k3.answer_queries(ERROR_ANSWER), "查询服务异常", id="error-answer"),
    pytest.param(lambda k3: k3.answer_queries([[100001]]), "[100001]", id="row-without-number"),
    pytest.param(lambda k3: k3.answer_queries([["x"]]), "['x']", id="row-of-one-text"),
    pytest.param(lambda k3: k3.answer_queries([[None, None]]), "[None, None]", id="row-of-nulls"),
    pytest.param(  # the same page for every StartRow: paging until an empty page must still end
        lambda k3: k3.answer_queries([[100001, "HT-2026-0001"]]),
        "FID 100001 after FID 100001",
        id="start-row-ignored",
    ),
]


@pytest.mark.parametrize(("break_k3", "quoted"), FAULTS)
def test_no_create_when_the_look_up_fails(run_export, contracts, k3, break_k3, quoted) -> None:
    new = contracts.add()  # never sent: a legacy bill may exist
    lost = contracts.add()  # a create whose answer was lost: the bill may exist
    contracts.execute(
        "INSERT INTO k3_contract_export_state (contract_id, contract_no, state, attempts)"
        " VALUES (%s, %s, 'in_flight', 1)",
        (lost["id"], lost["contract_no"]),
    )
    break_k3(k3)

    with pytest.raises(K3CloudError) as failure:
        run_export()

    text = str(failure.value)
    assert "K3 Cloud" in text and "'k3_cloud'" in text and k3.k3_url in text
    assert quoted in text  # what K3 answered, so the operator can see why
    assert k3.creates == 0 and k3.updates == 0 and k3.bill_count() == 0
    assert contracts.state(new["id"]) is None
    assert contracts.state(lost["id"])["state"] == "in_flight"


def test_a_number_k3_cannot_look_up_is_refused_alone(run_export, contracts, k3) -> None:
    """K3 rejects the query whenever it names one number: that contract only is held back."""
    added = [contracts.add() for _ in range(6)]
    bad = added[3]
    legacy = k3.add_bill({"FBillNo": added[1]["contract_no"]})
    k3.reject_lookup(bad["contract_no"], "过滤条件解析失败")

    with pytest.raises(AirflowException) as failure:
        run_export()

    text = str(failure.value)
    assert f"{bad['contract_no']} (id {bad['id']})" in text and "过滤条件解析失败" in text
    assert k3.bills_by_number(bad["contract_no"]) == []
    assert k3.creates == 4 and contracts.state(added[1]["id"])["k3_id"] == legacy
    state = contracts.state(bad["id"])
    assert state["state"] == "never_sent" and "过滤条件解析失败" in state["last_error"]
    assert all(contracts.state(c["id"])["state"] == "exported" for c in added if c is not bad)

    k3.accept_lookup(bad["contract_no"])
    counts, _ = run_export()
    assert counts == {
        "created": 1,
        "updated": 0,
        "unchanged": 5,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert len(k3.bills_by_number(bad["contract_no"])) == 1
