"""Contract numbers change in CRM: a bill is followed by its FID, never created twice for a new number."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException

from sublessor_airflow.hooks.k3_cloud import K3CloudError
from sublessor_billing.sandbox.k3_cloud import SAVE_PATH, Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RENAMED = "HT-2026-R001"


def _create_with_a_lost_answer(run_export, contracts, k3) -> tuple[dict, int]:
    """K3 commits the create, then its answer is lost (HTTP 500): the bill exists, we lack its FID."""
    contract = contracts.add()
    k3.add_fault(Fault("error_after", path=k3.path(SAVE_PATH), times=1))
    with pytest.raises(K3CloudError, match="k3_cloud"):
        run_export()
    [bill] = k3.bills_by_number(contract["contract_no"])
    state = contracts.state(contract["id"])
    assert state["state"] == "in_flight" and state["k3_id"] is None
    return contract, bill["FID"]


def test_renamed_after_a_lost_create_adopts_the_bill(run_export, contracts, k3) -> None:
    contract, fid = _create_with_a_lost_answer(run_export, contracts, k3)

    contracts.rename(contract["id"], RENAMED)
    counts, _ = run_export()

    assert counts == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.creates == 1 and k3.bill_count() == 1
    assert k3.bills_by_number(contract["contract_no"]) == []
    assert [b["FID"] for b in k3.bills_by_number(RENAMED)] == [fid]
    state = contracts.state(contract["id"])
    assert state["state"] == "exported" and state["k3_id"] == fid
    assert state["contract_no"] == RENAMED
    assert run_export()[0] == {
        "created": 0,
        "updated": 0,
        "unchanged": 1,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }


def test_adopted_bill_is_kept_when_k3_refuses_its_update(run_export, contracts, k3) -> None:
    """The FID found is committed before the update: a refusal must not lose it."""
    contract, fid = _create_with_a_lost_answer(run_export, contracts, k3)
    contracts.rename(contract["id"], RENAMED)
    k3.refuse(RENAMED, "合同编号不合规")

    with pytest.raises(AirflowException, match="合同编号不合规"):
        run_export()
    state = contracts.state(contract["id"])
    assert state["state"] == "refused" and state["k3_id"] == fid

    k3.accept(RENAMED)
    counts, _ = run_export()
    assert counts == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.creates == 1 and [b["FID"] for b in k3.bills_by_number(RENAMED)] == [fid]


def test_number_of_a_lost_create_survives_a_refusal_by_the_mapping(
    run_export, contracts, k3, airflow_variables
) -> None:
    """A contract K3 never saw again must not forget which number its lost create carried."""
    airflow_variables(
        "k3_contract_field_map", '{"FBillNo": "contract_no", "FRef": "contract_no|int"}'
    )
    contract = contracts.add(contract_no="20260001")
    k3.add_fault(Fault("error_after", path=k3.path(SAVE_PATH), times=1))
    with pytest.raises(K3CloudError):
        run_export()
    [bill] = k3.bills_by_number("20260001")

    contracts.rename(contract["id"], RENAMED)  # no longer an int: the mapping refuses it
    with pytest.raises(AirflowException, match="FRef"):
        run_export()
    assert contracts.state(contract["id"])["contract_no"] == "20260001"

    airflow_variables("k3_contract_field_map", '{"FBillNo": "contract_no"}')
    counts, _ = run_export()
    assert counts == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.creates == 1 and [b["FID"] for b in k3.bills_by_number(RENAMED)] == [bill["FID"]]


def _swap_numbers(contracts, first: dict, second: dict) -> None:
    """CRM keeps contract_no unique, so a swap goes through a third number."""
    contracts.rename(first["id"], "HT-SWAP-TMP")
    contracts.rename(second["id"], first["contract_no"])
    contracts.rename(first["id"], second["contract_no"])


def test_export_state_keys_follow_the_bill_not_the_number(user_prop_conn) -> None:
    """contract_no moves between contracts (swaps): not unique; a bill belongs to one contract."""
    with user_prop_conn.cursor() as cur:
        cur.execute("SHOW INDEX FROM k3_contract_export_state")
        names = [d[0] for d in cur.description]
        keys = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    unique = {k["Column_name"]: not k["Non_unique"] for k in keys if k["Seq_in_index"] == 1}
    assert unique["contract_id"] is True
    assert unique["contract_no"] is False
    assert unique.get("k3_id") is True


def test_exported_contracts_swapping_numbers_keep_their_bills(run_export, contracts, k3) -> None:
    first, second = contracts.add(), contracts.add()
    run_export()
    fids = [contracts.state(c["id"])["k3_id"] for c in (first, second)]

    _swap_numbers(contracts, first, second)
    counts, _ = run_export()

    assert counts == {
        "created": 0,
        "updated": 2,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert [b["FID"] for b in k3.bills_by_number(second["contract_no"])] == [fids[0]]
    assert [b["FID"] for b in k3.bills_by_number(first["contract_no"])] == [fids[1]]
    assert contracts.state(first["id"])["contract_no"] == second["contract_no"]
    assert contracts.state(second["id"])["contract_no"] == first["contract_no"]


@pytest.mark.parametrize("lost", [0, 1], ids=["lower-id-lost", "higher-id-lost"])
def test_swap_after_a_lost_answer_gives_each_contract_its_own_bill(
    run_export, contracts, k3, lost
) -> None:
    pair = [contracts.add(), contracts.add()]
    run_export()
    fids = [contracts.state(c["id"])["k3_id"] for c in pair]
    # What a lost create answer leaves behind: in_flight, the number sent, no FID.
    contracts.execute(
        "UPDATE k3_contract_export_state SET state = 'in_flight', k3_id = NULL, k3_number = NULL,"
        " exported_version = NULL, exported_digest = NULL WHERE contract_id = %s",
        (pair[lost]["id"],),
    )

    _swap_numbers(contracts, *pair)
    counts, _ = run_export()

    assert counts == {
        "created": 0,
        "updated": 2,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.creates == 2 and k3.bill_count() == 2
    for contract, fid in zip(pair, fids, strict=True):
        state = contracts.state(contract["id"])
        assert state["state"] == "exported" and state["k3_id"] == fid
    assert [b["FID"] for b in k3.bills_by_number(pair[1]["contract_no"])] == [fids[0]]
    assert [b["FID"] for b in k3.bills_by_number(pair[0]["contract_no"])] == [fids[1]]


def test_a_lost_create_is_not_adopted_by_the_contract_given_its_number(
    run_export, contracts, k3
) -> None:
    """low is refused, high's create is lost; CRM gives high's number to low: high keeps its bill."""
    k3.configure(unique_numbers=True)  # so high must release HT-A before low's create takes it
    low = contracts.add(contract_no="HT-L")
    high = contracts.add(contract_no="HT-A")
    k3.refuse("HT-L", "客户不存在")
    k3.add_fault(Fault("error_after", path=k3.path(SAVE_PATH), nth=[2]))  # high's create
    with pytest.raises(K3CloudError):
        run_export()
    [lost] = k3.bills_by_number("HT-A")
    assert contracts.state(low["id"])["state"] == "refused"
    assert contracts.state(high["id"])["state"] == "in_flight"

    contracts.rename(high["id"], "HT-A2")
    contracts.rename(low["id"], "HT-A")
    counts, _ = run_export()

    assert counts == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert contracts.state(high["id"])["k3_id"] == lost["FID"]
    assert [b["FID"] for b in k3.bills_by_number("HT-A2")] == [lost["FID"]]
    [own] = k3.bills_by_number("HT-A")
    assert own["FID"] != lost["FID"] and contracts.state(low["id"])["k3_id"] == own["FID"]
    assert k3.creates == 2 and k3.bill_count() == 2


def test_a_lost_create_keeps_its_claim_while_the_mapping_refuses_the_contract(
    run_export, contracts, k3, airflow_variables
) -> None:
    """A refusal before sending must not make a lost create's bill free for another contract."""
    airflow_variables(
        "k3_contract_field_map", '{"FBillNo": "contract_no", "FRef": "contract_no|int"}'
    )
    high = contracts.add(contract_no="20260001")
    k3.add_fault(Fault("error_after", path=k3.path(SAVE_PATH), times=1))
    with pytest.raises(K3CloudError):
        run_export()
    [lost] = k3.bills_by_number("20260001")

    contracts.rename(high["id"], RENAMED)  # the mapping now refuses high: nothing is sent
    low = contracts.add(contract_no="20260001")
    with pytest.raises(AirflowException, match="FRef"):
        run_export()

    assert contracts.state(high["id"])["state"] == "in_flight"
    assert contracts.state(low["id"])["k3_id"] != lost["FID"]
    assert k3.creates == 2

    airflow_variables("k3_contract_field_map", '{"FBillNo": "contract_no"}')
    counts, _ = run_export()
    assert counts["created"] == 0 and k3.creates == 2
    assert contracts.state(high["id"])["k3_id"] == lost["FID"]
    assert [b["FID"] for b in k3.bills_by_number(RENAMED)] == [lost["FID"]]


def test_a_contract_refused_before_sending_claims_no_number(
    run_export, contracts, k3, airflow_variables
) -> None:
    """Nothing was sent: the contract is looked up by its current number only, like a new one."""
    airflow_variables(
        "k3_contract_field_map", '{"FBillNo": "contract_no", "FRef": "contract_no|int"}'
    )
    contract = contracts.add(contract_no="HT-X")  # not an int: refused by the mapping
    with pytest.raises(AirflowException, match="FRef"):
        run_export()
    state = contracts.state(contract["id"])
    assert state["state"] == "never_sent" and state["k3_id"] is None and state["attempts"] == 0

    other = k3.add_bill({"FBillNo": "HT-X"})  # K3 has a bill under the number never sent
    contracts.rename(contract["id"], "20260077")
    counts, _ = run_export()

    assert counts["created"] == 1 and counts["updated"] == 0
    assert contracts.state(contract["id"])["k3_id"] != other
    assert [b["FID"] for b in k3.bills_by_number("HT-X")] == [other]
