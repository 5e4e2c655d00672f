"""Contract numbers change in CRM: a bill is followed by its FID, never created twice for a new number."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


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

    assert counts == {"created": 0, "updated": 2, "unchanged": 0, "refused": 0}
    assert [b["FID"] for b in k3.bills_by_number(second["contract_no"])] == [fids[0]]
    assert [b["FID"] for b in k3.bills_by_number(first["contract_no"])] == [fids[1]]
    assert contracts.state(first["id"])["contract_no"] == second["contract_no"]
    assert contracts.state(second["id"])["contract_no"] == first["contract_no"]
