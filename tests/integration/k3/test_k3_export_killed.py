"""A worker SIGKILLed while K3 holds its create: the next run finds the bill instead of creating another."""

from __future__ import annotations

import pytest
from support.crash import kill, start_child
from support.waiting import wait_until

from sublessor_billing.sandbox.k3_cloud import SAVE_PATH, Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EXPORT = """
from sublessor_airflow.operators.k3_contract_export import K3ContractExportOperator

class TI:
    def xcom_push(self, key, value):
        pass

K3ContractExportOperator(task_id="export_contracts", request_timeout=60).execute({"ti": TI()})
"""


def test_killed_between_k3_commit_and_our_commit(run_export, contracts, k3) -> None:
    contract = contracts.add()
    # K3 creates the bill, then sits on its answer until the worker is gone.
    k3.add_fault(Fault("delay_after", path=k3.path(SAVE_PATH), seconds=30, times=1))
    worker = start_child(EXPORT)
    try:
        wait_until(
            lambda: k3.creates == 1 or worker.poll() is not None, 60, "the worker to reach K3"
        )
        assert k3.creates == 1, f"the worker ended before K3 created (exit code {worker.poll()})"
    finally:
        kill(worker)
    assert contracts.state(contract["id"])["state"] == "in_flight"

    counts, _ = run_export()

    assert counts == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    [bill] = k3.bills_by_number(contract["contract_no"])
    state = contracts.state(contract["id"])
    assert state["state"] == "exported" and state["k3_id"] == bill["FID"]
    assert k3.creates == 1
