"""Per-contract export decisions and the failure report."""

from __future__ import annotations

import datetime as dt

import pytest

from sublessor_billing.k3.plan import (
    Action,
    ExportState,
    PriorExport,
    bill_candidates,
    claimed_by_others,
    create_may_still_land,
    lookup_numbers,
    plan_export,
    recovers_first,
)
from sublessor_billing.k3.report import ExportReport, Refusal

IN_FLIGHT, EXPORTED = ExportState.IN_FLIGHT, ExportState.EXPORTED
REFUSED, NEVER_SENT = ExportState.REFUSED, ExportState.NEVER_SENT
V1 = dt.datetime(2026, 3, 1, 9, 0, 0)
V2 = V1 + dt.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("version", "digest", "state", "action"),
    [
        (V1, "d", None, Action.CREATE),
        (V1, "d", PriorExport(IN_FLIGHT, None, None), Action.RECOVER),
        (V2, "d", PriorExport(REFUSED, None, None, None), Action.RECOVER),
        (V1, "d", PriorExport(REFUSED, 10, V1, "d"), Action.UPDATE),
        (V1, "d", PriorExport(IN_FLIGHT, 10, V1, "d"), Action.UPDATE),
        (V2, "d", PriorExport(EXPORTED, 10, V1, "d"), Action.UPDATE),
        (V1, "e", PriorExport(EXPORTED, 10, V1, "d"), Action.UPDATE),
        (V1, "d", PriorExport(EXPORTED, 10, V1, "d"), Action.UNCHANGED),
        (V1, "e", PriorExport(EXPORTED, 10, V1, None), Action.UNCHANGED),
        (V1, "e", PriorExport(EXPORTED, 10, V2, "d"), Action.UNCHANGED),
        (V1, "d", PriorExport(EXPORTED, 10, None, "d"), Action.UPDATE),
    ],
)
def test_plan_export(version, digest, state, action) -> None:
    assert plan_export(version, digest, state) is action


def test_state_from_a_joined_row() -> None:
    assert PriorExport.from_row({"state": None, "k3_id": None}) is None
    row = {"state": "exported", "k3_id": 3, "exported_version": V1, "exported_digest": "x"}
    prior = PriorExport.from_row(row)
    assert prior == PriorExport(EXPORTED, 3, V1, "x") and prior.state is ExportState.EXPORTED
    with pytest.raises(ValueError, match="'lost'"):
        PriorExport.from_row({**row, "state": "lost"})  # a state the export does not know


def test_nothing_ever_created_twice_once_a_bill_may_exist() -> None:
    """Only a contract with no state row at all may be created without a look-up first."""
    for state in (IN_FLIGHT, REFUSED, EXPORTED):
        for k3_id in (None, 1):
            for exported in (None, V1):
                action = plan_export(V2, "d", PriorExport(state, k3_id, exported, "d"))
                assert action is not Action.CREATE


def test_numbers_looked_up_before_a_create() -> None:
    assert lookup_numbers(Action.CREATE, "HT-2", None) == ["HT-2"]
    # The number the lost create sent comes first: that bill is certainly ours.
    assert lookup_numbers(Action.RECOVER, "HT-2", "HT-1") == ["HT-1", "HT-2"]
    assert lookup_numbers(Action.RECOVER, "HT-2", "ht-2 ") == ["ht-2 "]
    assert lookup_numbers(Action.UPDATE, "HT-2", "HT-1") == []
    assert lookup_numbers(Action.UNCHANGED, "HT-2", "HT-1") == []


def test_bill_candidates_by_number_then_oldest() -> None:
    found = {"ht-1": [30, 10], "ht-2": [20, 10]}
    assert bill_candidates(["HT-1 ", "HT-2"], found) == [(10, "HT-1 "), (30, "HT-1 "), (20, "HT-2")]
    assert bill_candidates(["HT-2", "HT-1"], found) == [(10, "HT-2"), (20, "HT-2"), (30, "HT-1")]
    assert bill_candidates(["HT-3"], found) == []


def test_a_bill_a_lost_create_sent_is_claimed_by_its_senders_only() -> None:
    senders = {"ht-a": {2}, "ht-b": {3, 4}}
    assert claimed_by_others(1, "HT-A ", senders) == {2}
    assert claimed_by_others(2, "HT-A", senders) == set()
    assert claimed_by_others(3, "HT-B", senders) == set()  # two senders: either may adopt it
    assert claimed_by_others(1, "HT-C", senders) == set()


def test_lost_creates_recover_before_adoptions_by_number() -> None:
    assert recovers_first(Action.RECOVER, PriorExport(IN_FLIGHT, None, None))
    assert not recovers_first(Action.RECOVER, PriorExport(REFUSED, None, None))
    assert not recovers_first(Action.CREATE, None)
    assert plan_export(V1, "d", PriorExport(NEVER_SENT, None, None)) is Action.CREATE
    assert plan_export(V1, "d", PriorExport(NEVER_SENT, 10, None)) is Action.UPDATE


def test_report_counts_and_failure_message() -> None:
    report = ExportReport(created=2, updated=1, unchanged=5)
    assert report.failure_message() is None
    report.refusals += [Refusal(4, "HT-4", "客户不存在"), Refusal(6, "HT-6", "FBillNo: 重复")]
    assert report.counts() == {
        "created": 2,
        "updated": 1,
        "unchanged": 5,
        "refused": 2,
        "waiting": 0,
        "conflict": 0,
    }
    text = report.failure_message()
    assert "refused 2 contract(s)" in text
    assert "HT-4 (id 4): 客户不存在" in text and "HT-6 (id 6): FBillNo: 重复" in text


def test_waiting_alone_does_not_fail_and_conflicts_do() -> None:
    report = ExportReport(waiting=[Refusal(3, "HT-3", "sent 60s ago")])
    assert report.failure_message() is None and report.counts()["waiting"] == 1
    report.conflicts.append(Refusal(5, "HT-5", "K3 bill FID 100001 was recorded for ..."))
    text = report.failure_message()
    assert "HT-5 (id 5): K3 bill FID 100001" in text and "K3 Cloud refused" not in text
    assert "k3_contract_export_conflict" in text and "docs/k3_contract_export.md" in text


def test_failure_message_is_bounded() -> None:
    report = ExportReport(refusals=[Refusal(i, f"HT-{i}", "x") for i in range(30)])
    text = report.failure_message(limit=3)
    assert "HT-2 " in text and "HT-3 " not in text and "and 27 more" in text


def test_a_recent_lost_create_waits_for_the_quiet_period() -> None:
    recent = PriorExport(IN_FLIGHT, None, None, age_s=90)
    assert create_may_still_land(recent, 600)
    assert not create_may_still_land(PriorExport(IN_FLIGHT, None, None, age_s=601), 600)
    assert not create_may_still_land(PriorExport(REFUSED, None, None, age_s=90), 600)
    assert not create_may_still_land(PriorExport(IN_FLIGHT, 10, None, age_s=90), 600)
    assert not create_may_still_land(None, 600)
