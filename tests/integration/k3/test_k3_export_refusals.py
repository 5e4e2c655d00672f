"""K3 refuses contracts for their data, in one run: each refusal recorded, the rest exported, the task fails."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException
from k3_seed import TaskInstanceXCom

from sublessor_airflow.operators.k3_contract_export import K3ContractExportOperator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SAVE_REFUSAL = "合同金额必须大于 0"
LOOKUP_REFUSAL = "过滤条件解析失败"


def test_refused_contracts_are_recorded_and_counted_while_the_others_export(
    k3_env, contracts
) -> None:
    k3 = k3_env
    first, saved_refused, lookup_refused, legacy, last = (contracts.add() for _ in range(5))
    legacy_fid = k3.add_bill({"FBillNo": legacy["contract_no"]})
    k3.refuse(saved_refused["contract_no"], SAVE_REFUSAL)  # Save answers IsSuccess false
    k3.reject_lookup(lookup_refused["contract_no"], LOOKUP_REFUSAL)  # its FilterString fails

    ti = TaskInstanceXCom()
    operator = K3ContractExportOperator(task_id="export_contracts", request_timeout=5)
    with pytest.raises(AirflowException) as failure:
        operator.execute({"ti": ti})

    # Documented: the counts are pushed also when the task fails for refusals.
    assert ti.pushed["counts"] == {
        "created": 2,
        "updated": 1,
        "unchanged": 0,
        "refused": 2,
        "waiting": 0,
        "conflict": 0,
    }
    text = str(failure.value)
    assert "K3 Cloud refused 2 contract(s)" in text
    for contract, message in ((saved_refused, SAVE_REFUSAL), (lookup_refused, LOOKUP_REFUSAL)):
        assert f"contract {contract['contract_no']} (id {contract['id']}):" in text
        assert message in text
        assert k3.bills_by_number(contract["contract_no"]) == []

    sent = contracts.state(saved_refused["id"])  # a Save was sent and refused
    assert (sent["state"], sent["k3_id"], sent["attempts"]) == ("refused", None, 1)
    assert SAVE_REFUSAL in sent["last_error"]
    unsent = contracts.state(lookup_refused["id"])  # nothing was sent: it claims no bill
    assert (unsent["state"], unsent["k3_id"], unsent["attempts"]) == ("never_sent", None, 0)
    assert LOOKUP_REFUSAL in unsent["last_error"]

    assert contracts.state(legacy["id"])["k3_id"] == legacy_fid
    for contract in (first, legacy, last):
        [bill] = k3.bills_by_number(contract["contract_no"])
        state = contracts.state(contract["id"])
        assert state["state"] == "exported" and state["k3_id"] == bill["FID"]
        assert state["last_error"] is None
    assert k3.creates == 2 and k3.updates == 1 and k3.bill_count() == 3
