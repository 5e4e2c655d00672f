"""Cutover from the legacy exporter: bills K3 already holds are adopted by number, never created again."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException

from sublessor_billing.sandbox.k3_cloud import QUERY_PATH

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PAGE = 20


def _queries(k3) -> int:
    return k3.full_state()["request_counts"].get(k3.path(QUERY_PATH), 0)


def test_first_run_adopts_every_bill_the_legacy_exporter_created(run_export, contracts, k3) -> None:
    added = [contracts.add(sublessor_id=100 + i) for i in range(2 * PAGE + 7)]  # 3 pages
    legacy = {
        c["id"]: k3.add_bill({"FBillNo": c["contract_no"], "FNote": "CrmK3ApiBiz"}) for c in added
    }

    counts, _ = run_export(page_size=PAGE)

    assert k3.creates == 0  # no Save without FID
    assert counts == {
        "created": 0,
        "updated": len(added),
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.bill_count() == len(added) and k3.updates == len(added)
    assert _queries(k3) == 3 * 2  # per page of contracts: one look-up (rows, then an empty page)
    for i, contract in enumerate(added):
        state = contracts.state(contract["id"])
        assert state["state"] == "exported" and state["k3_id"] == legacy[contract["id"]]
        [bill] = k3.bills_by_number(contract["contract_no"])
        assert bill["FID"] == legacy[contract["id"]]
        assert bill["FCustomerID"] == {"FNumber": str(100 + i)}  # updated with our data

    again, _ = run_export(page_size=PAGE)
    assert again == {
        "created": 0,
        "updated": 0,
        "unchanged": len(added),
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert _queries(k3) == 3 * 2 and k3.creates == 0


def test_legacy_numbers_match_as_k3_compares_them(run_export, contracts, k3) -> None:
    """Case and trailing spaces are ignored, leading spaces are not; quotes are escaped."""
    quoted = contracts.add(contract_no="HT-O'Brien-1")
    cased = contracts.add(contract_no="ht-2026-lower")
    spaced = contracts.add()
    twins = contracts.add()
    leading = contracts.add()
    new = contracts.add()
    fid_quoted = k3.add_bill({"FBillNo": "HT-O'Brien-1"})
    fid_cased = k3.add_bill({"FBillNo": "HT-2026-LOWER"})
    fid_spaced = k3.add_bill({"FBillNo": spaced["contract_no"] + "  "})
    fid_twin = k3.add_bill({"FBillNo": twins["contract_no"]})
    k3.add_bill({"FBillNo": twins["contract_no"].lower()})  # the legacy job's double
    k3.add_bill({"FBillNo": " " + leading["contract_no"]})  # another number for K3
    k3.add_bill({"FBillNo": "HT-O'Brien-1X"})  # a prefix match is not a match

    counts, _ = run_export(page_size=PAGE)

    assert counts == {
        "created": 2,
        "updated": 4,
        "unchanged": 0,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert _queries(k3) == 2 and k3.creates == 2
    adopted = {quoted["id"]: fid_quoted, cased["id"]: fid_cased, spaced["id"]: fid_spaced}
    adopted[twins["id"]] = fid_twin  # the oldest of two bills with one number
    for contract_id, fid in adopted.items():
        assert contracts.state(contract_id)["k3_id"] == fid
    for contract in (leading, new):
        [bill] = k3.bills_by_number(contract["contract_no"])
        assert contracts.state(contract["id"])["k3_id"] == bill["FID"]


def test_cutover_adopts_every_bill_when_k3_caps_rows_per_query(run_export, contracts, k3) -> None:
    """K3 returns fewer rows per call than Limit asks: the look-up must not take that for the end."""
    k3.configure(row_cap=4)
    added = [contracts.add() for _ in range(PAGE - 5)]
    legacy = {c["id"]: k3.add_bill({"FBillNo": c["contract_no"]}) for c in added}

    counts, _ = run_export(page_size=PAGE)

    assert k3.creates == 0 and k3.bill_count() == len(added)
    assert counts["created"] == 0 and counts["updated"] == len(added)
    for contract in added:
        assert contracts.state(contract["id"])["k3_id"] == legacy[contract["id"]]


def test_a_bill_k3_matches_under_another_width_is_adopted(run_export, contracts, k3) -> None:
    """K3 (SQL Server, no _WS) answers a full-width ＨＴ bill for HT: never dropped, never doubled."""
    k3.configure(width_insensitive=True)
    added = [contracts.add() for _ in range(6)]
    wide = added[2]["contract_no"].replace("HT", "ＨＴ")
    fid_wide = k3.add_bill({"FBillNo": wide})
    fid_plain = k3.add_bill({"FBillNo": added[4]["contract_no"]})

    counts, _ = run_export(page_size=PAGE)

    assert counts["created"] == 4 and counts["updated"] == 2
    assert k3.creates == 4 and k3.bill_count() == 6
    assert contracts.state(added[2]["id"])["k3_id"] == fid_wide
    assert contracts.state(added[4]["id"])["k3_id"] == fid_plain


def test_an_audited_legacy_bill_k3_will_not_update_keeps_its_fid(run_export, contracts, k3) -> None:
    """The cutover updates every adopted bill; K3 refuses audited ones: refused, never doubled."""
    audited, other = contracts.add(), contracts.add()
    fid = k3.add_bill({"FBillNo": audited["contract_no"], "FDocumentStatus": "C"})
    k3.add_bill({"FBillNo": other["contract_no"]})
    k3.refuse(audited["contract_no"], "单据已审核，不允许修改")

    for _ in range(2):
        with pytest.raises(AirflowException, match="单据已审核"):
            run_export(page_size=PAGE)
        state = contracts.state(audited["id"])
        assert state["state"] == "refused" and state["k3_id"] == fid
        assert k3.creates == 0 and len(k3.bills_by_number(audited["contract_no"])) == 1
