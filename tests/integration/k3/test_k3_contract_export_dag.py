"""`airflow dags test k3_contract_export` against the sandbox K3 Cloud: bills made, state kept."""

from __future__ import annotations

import pytest
from support.airflow import airflow_env, dags_test
from support.connections import k3_connection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_dags_test_exports_new_contracts_and_adopts_a_bill_k3_already_holds(
    k3, contracts, user_prop_target, airflow_home
) -> None:
    new = [contracts.add(sublessor_id=10 + i) for i in range(2)]
    legacy = contracts.add(sublessor_id=20)
    legacy_fid = k3.add_bill({"FBillNo": legacy["contract_no"], "FNote": "CrmK3ApiBiz"})
    env = airflow_env(
        airflow_home,
        connections={
            "k3_cloud": k3_connection(k3.k3_url),
            "user_prop_db": user_prop_target.airflow_connection(),
        },
    )

    run = dags_test(env, "k3_contract_export")

    assert (run.returncode, run.state) == (0, "success"), run.output[-4000:]
    assert run.tasks == {"export_contracts": "success"}
    assert run.xcom(airflow_home, "export_contracts") == {
        "created": 2,
        "updated": 1,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.creates == 2 and k3.bill_count() == 3
    for i, contract in enumerate(new):
        [bill] = k3.bills_by_number(contract["contract_no"])
        assert bill["FCustomerID"] == {"FNumber": str(10 + i)}
        state = contracts.state(contract["id"])
        assert (state["state"], state["k3_id"]) == ("exported", bill["FID"])
    assert contracts.state(legacy["id"])["k3_id"] == legacy_fid
    assert [b["FID"] for b in k3.bills_by_number(legacy["contract_no"])] == [legacy_fid]
