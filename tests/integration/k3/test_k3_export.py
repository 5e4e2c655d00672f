"""End to end: real MariaDB + sandbox K3 Cloud on loopback, through the operator and the hook."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException

from sublessor_airflow.hooks.k3_cloud import K3CloudError, K3CloudHook
from sublessor_billing.k3.export import export_contracts
from sublessor_billing.k3.mapping import parse_field_map
from sublessor_billing.sandbox.k3_cloud import SAVE_PATH, Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_two_runs_create_one_bill_per_contract(run_export, contracts, k3) -> None:
    added = [contracts.add(sublessor_id=10 + i, total_amount=100_00 * (i + 1)) for i in range(3)]

    counts, ti = run_export()
    assert counts == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert ti.pushed["counts"] == counts
    again, _ = run_export()
    assert again == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }

    assert k3.bill_count() == 3
    for i, contract in enumerate(added):
        [bill] = k3.bills_by_number(contract["contract_no"])
        assert bill["FCustomerID"] == {"FNumber": str(10 + i)}
        assert bill["FContractAmount"] == float(100 * (i + 1))
        assert (bill["FStartDate"], bill["FEndDate"]) == ("2026-03-01", "2027-02-28")
        assert bill["FDate"] == "2026-02-27 15:04:05"
        state = contracts.state(contract["id"])
        assert state["state"] == "exported" and state["k3_id"] == bill["FID"]
        assert state["k3_number"] == contract["contract_no"] and state["attempts"] == 0


def test_edited_contract_is_updated_through_its_fid(run_export, contracts, k3) -> None:
    first, _ = contracts.add(), contracts.add()
    run_export()
    fid = contracts.state(first["id"])["k3_id"]

    contracts.execute(
        "UPDATE sublessor_contract SET total_amount = 999900, status = 0,"
        " updated_datetime = updated_datetime + INTERVAL 1 HOUR WHERE id = %s",
        (first["id"],),
    )
    counts, _ = run_export()

    assert counts == {
        "created": 0,
        "updated": 1,
        "unchanged": 1,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    [bill] = k3.bills_by_number(first["contract_no"])
    assert bill["FID"] == fid and bill["FContractAmount"] == 9999.0
    assert bill["FCancelStatus"] == "B"
    assert k3.bill_count() == 2 and k3.updates == 1
    assert contracts.state(first["id"])["exported_version"].hour == 10


def test_edit_within_the_same_second_is_still_exported(run_export, contracts, k3) -> None:
    contract = contracts.add(total_amount=500)
    run_export()
    contracts.execute(
        "UPDATE sublessor_contract SET end_date = '2027-12-31', updated_datetime = updated_datetime"
        " WHERE id = %s",
        (contract["id"],),
    )
    counts, _ = run_export()
    assert counts["updated"] == 1
    assert k3.bills_by_number(contract["contract_no"])[0]["FEndDate"] == "2027-12-31"


def test_balance_only_change_is_not_exported(run_export, contracts, k3) -> None:
    contract = contracts.add(total_amount=10_000)
    run_export()
    # Exactly what accounting does when it recognises income.
    contracts.execute(
        "UPDATE sublessor_contract SET balance = balance - 4000, updated_datetime = updated_datetime"
        " WHERE id = %s",
        (contract["id"],),
    )
    counts, _ = run_export()
    assert counts == {
        "created": 0,
        "updated": 0,
        "unchanged": 1,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.updates == 0 and k3.creates == 1


def test_expired_session_is_recovered_with_one_relogin(k3_env, contracts, user_prop_conn) -> None:
    k3 = k3_env
    hook = K3CloudHook()
    field_map = parse_field_map(None)
    contracts.add()
    assert export_contracts(user_prop_conn, hook, field_map).created == 1
    assert hook.login_count == 1

    k3.expire_sessions()
    contracts.add()
    report = export_contracts(user_prop_conn, hook, field_map)

    assert report.counts() == {
        "created": 1,
        "updated": 0,
        "unchanged": 1,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert hook.login_count == 2 and k3.logins == 2
    assert k3.expired_answers == 1
    assert k3.bill_count() == 2


def test_refusal_is_reported_without_blocking_the_others(run_export, contracts, k3) -> None:
    added = [contracts.add() for _ in range(3)]
    refused = added[1]["contract_no"]
    k3.refuse(refused, "客户 7 在 K3 中不存在")

    with pytest.raises(AirflowException) as failure:
        run_export()
    assert refused in str(failure.value) and "客户 7 在 K3 中不存在" in str(failure.value)
    assert k3.bill_count() == 2 and k3.bills_by_number(refused) == []
    state = contracts.state(added[1]["id"])
    assert state["state"] == "refused" and state["k3_id"] is None
    assert "客户 7 在 K3 中不存在" in state["last_error"]

    k3.accept(refused)
    counts, _ = run_export()
    assert counts == {
        "created": 1,
        "updated": 0,
        "unchanged": 2,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert [len(k3.bills_by_number(c["contract_no"])) for c in added] == [1, 1, 1]


@pytest.mark.parametrize("crash", ["error_after", "drop_after"])
def test_crash_after_k3_saved_does_not_create_a_duplicate(run_export, contracts, k3, crash) -> None:
    _, second = contracts.add(), contracts.add()
    # K3 commits the second create, then the answer is lost (HTTP 500 / connection dropped).
    k3.add_fault(Fault(crash, path=k3.path(SAVE_PATH), nth=[2]))

    with pytest.raises(K3CloudError, match="k3_cloud"):
        run_export()
    assert k3.bill_count() == 2
    state = contracts.state(second["id"])
    assert state["state"] == "in_flight" and state["k3_id"] is None

    counts, _ = run_export()
    assert counts == {
        "created": 0,
        "updated": 1,
        "unchanged": 1,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    [bill] = k3.bills_by_number(second["contract_no"])
    assert contracts.state(second["id"])["k3_id"] == bill["FID"]
    assert k3.bill_count() == 2 and k3.creates == 2


def test_field_map_from_variable_is_used(run_export, contracts, k3, airflow_variables) -> None:
    airflow_variables(
        "k3_contract_field_map",
        '{"FBillNo": "contract_no", "F_Sublessor": "sublessor_id|int", "FAmount": "total_amount|yuan"}',
    )
    contract = contracts.add(sublessor_id=42, total_amount=1)
    run_export()
    [bill] = k3.bills_by_number(contract["contract_no"])
    assert {k: v for k, v in bill.items() if k != "FID"} == {
        "FBillNo": contract["contract_no"],
        "F_Sublessor": 42,
        "FAmount": 0.01,
    }
