"""A slow K3 may commit a create after our next look-up: no second create within the quiet period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sublessor_airflow.hooks.k3_cloud import K3CloudError
from sublessor_billing.sandbox.k3_cloud import SAVE_PATH, Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAITING = {"created": 0, "updated": 0, "unchanged": 0, "refused": 0, "waiting": 1, "conflict": 0}


def _create_k3_has_not_committed_yet(run_export, contracts, k3) -> dict:
    """The create timed out; K3 shows no bill (yet): it may still be committing it."""
    contract = contracts.add()
    k3.add_fault(Fault("error_before", path=k3.path(SAVE_PATH), times=1))
    with pytest.raises(K3CloudError):
        run_export()
    assert contracts.state(contract["id"])["state"] == "in_flight" and k3.bill_count() == 0
    return contract


def _attempt_made_ago(contracts, contract: dict, minutes: int) -> None:
    contracts.execute(
        "UPDATE k3_contract_export_state SET updated_at = NOW(3) - INTERVAL %s MINUTE"
        " WHERE contract_id = %s",
        (minutes, contract["id"]),
    )


def test_a_create_k3_may_still_commit_is_adopted_not_sent_again(run_export, contracts, k3) -> None:
    contract = _create_k3_has_not_committed_yet(run_export, contracts, k3)

    counts, _ = run_export()  # Airflow's retry, a minute later
    assert counts == WAITING and k3.creates == 0
    state = contracts.state(contract["id"])
    assert state["state"] == "in_flight" and state["k3_id"] is None

    fid = k3.add_bill({"FBillNo": contract["contract_no"]})  # the slow K3 commits it at last
    counts, _ = run_export()
    assert counts["updated"] == 1 and counts["created"] == 0 and k3.creates == 0
    assert contracts.state(contract["id"])["k3_id"] == fid


def test_a_create_k3_never_committed_is_sent_again_after_the_quiet_period(
    run_export, contracts, k3
) -> None:
    contract = _create_k3_has_not_committed_yet(run_export, contracts, k3)
    _attempt_made_ago(contracts, contract, 11)

    counts, _ = run_export(create_quiet_period=timedelta(minutes=30))
    assert counts == WAITING and k3.creates == 0

    counts, _ = run_export()  # default: 10 minutes
    assert counts["created"] == 1 and k3.creates == 1
    [bill] = k3.bills_by_number(contract["contract_no"])
    assert contracts.state(contract["id"])["k3_id"] == bill["FID"]
