"""Contract pages and K3 row pages crossed at size - 1, size and size + 1: every contract exported once."""

from __future__ import annotations

import math

import pytest
from airflow.sdk.exceptions import AirflowException

from sublessor_billing.sandbox.k3_cloud import QUERY_PATH

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PAGE = 4  # contracts per export page (page_size)
ROW_CAP = 2  # rows K3 answers per ExecuteBillQuery, whatever Limit asks
REFUSAL = "客户 7 在 K3 中不存在"


def _queries(k3) -> int:
    return k3.full_state()["request_counts"].get(k3.path(QUERY_PATH), 0)


@pytest.mark.parametrize("n", [PAGE - 1, PAGE, PAGE + 1, 2 * PAGE + 1])
def test_every_contract_over_several_pages_is_exported_once(run_export, contracts, k3, n) -> None:
    k3.configure(row_cap=ROW_CAP)
    added = [contracts.add() for _ in range(n)]
    legacy = {
        i: k3.add_bill({"FBillNo": c["contract_no"]}) for i, c in enumerate(added) if i % 3 == 1
    }
    refused = added[0]  # on the first page: the pages after it must still be read
    k3.refuse(refused["contract_no"], REFUSAL)

    with pytest.raises(AirflowException, match=REFUSAL) as failure:
        run_export(page_size=PAGE)
    assert f"{refused['contract_no']} (id {refused['id']})" in str(failure.value)

    # One look-up per page of contracts, read in K3 pages until an empty one.
    found = [sum(1 for i in legacy if p <= i < p + PAGE) for p in range(0, n, PAGE)]
    assert _queries(k3) == sum(math.ceil(f / ROW_CAP) + 1 for f in found)
    assert k3.creates == n - len(legacy) - 1 and k3.updates == len(legacy)
    assert k3.bills_by_number(refused["contract_no"]) == []
    state = contracts.state(refused["id"])
    assert state["state"] == "refused" and state["k3_id"] is None and REFUSAL in state["last_error"]
    for i, contract in enumerate(added[1:], start=1):
        [bill] = k3.bills_by_number(contract["contract_no"])
        assert bill["FID"] == legacy.get(i, bill["FID"])
        state = contracts.state(contract["id"])
        assert state["state"] == "exported" and state["k3_id"] == bill["FID"]

    k3.accept(refused["contract_no"])
    counts, _ = run_export(page_size=PAGE)
    assert counts == {
        "created": 1,
        "updated": 0,
        "unchanged": n - 1,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.bill_count() == n
    assert [len(k3.bills_by_number(c["contract_no"])) for c in added] == [1] * n
