"""Two exports at once: the named lock lets one run; the other waits for it, or gives up naming it."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from support.waiting import Worker, wait_until

from sublessor_airflow.hooks.k3_cloud import K3CloudHook
from sublessor_billing.db.connect import connect
from sublessor_billing.db.named_lock import LockTimeout
from sublessor_billing.k3 import state as export_state
from sublessor_billing.k3.export import export_contracts
from sublessor_billing.k3.mapping import parse_field_map
from sublessor_billing.sandbox.k3_cloud import QUERY_PATH, SAVE_PATH

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAITING_FOR_THE_LOCK = (
    "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
    " AND id <> CONNECTION_ID() AND info LIKE 'SELECT GET_LOCK%%'"
)


class HeldBeforeFirstSave:
    """The real hook, whose first Save waits until the test lets it go: its run holds the lock."""

    def __init__(self) -> None:
        self.hook = K3CloudHook()
        self.saving = threading.Event()
        self.go = threading.Event()

    def save(self, model: Mapping[str, Any], need_return_fields: Sequence[str] = ()) -> Any:
        if not self.saving.is_set():
            self.saving.set()
            if not self.go.wait(60):
                raise AssertionError("the test never let the first Save go")
        return self.hook.save(model, need_return_fields)

    def find_bills(self, bill_numbers: Iterable[str]) -> list[tuple[int, str]]:
        return self.hook.find_bills(bill_numbers)


def _export(target, client):
    def run():
        conn = connect(target)
        try:
            return export_contracts(conn, client, parse_field_map(None))
        finally:
            conn.close()

    return run


def _requests(k3) -> int:
    counts = k3.full_state()["request_counts"]
    return counts.get(k3.path(SAVE_PATH), 0) + counts.get(k3.path(QUERY_PATH), 0)


def test_a_second_export_waits_for_the_first_and_exports_nothing_twice(
    k3_env, contracts, user_prop_target
) -> None:
    k3 = k3_env
    added = [contracts.add() for _ in range(3)]
    held = HeldBeforeFirstSave()
    with Worker(_export(user_prop_target, held), name="first") as first:
        assert held.saving.wait(60)  # the first run is inside its lock, before any Save
        try:
            with Worker(_export(user_prop_target, K3CloudHook()), name="second") as second:
                wait_until(
                    lambda: second.done() or contracts.query(WAITING_FOR_THE_LOCK)[0][0],
                    60,
                    "the second export to wait for the lock",
                )
                assert not second.done()  # it did not run beside the first
                held.go.set()
        finally:
            held.go.set()  # whatever failed, the first run is not left hanging
    assert first.result.counts()["created"] == 3
    assert second.result.counts() == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "refused": 0,
        "waiting": 0,
        "conflict": 0,
    }
    assert k3.creates == 3 and k3.updates == 0 and k3.bill_count() == 3
    for contract in added:
        [bill] = k3.bills_by_number(contract["contract_no"])
        assert contracts.state(contract["id"])["k3_id"] == bill["FID"]


def test_an_export_kept_waiting_past_its_timeout_gives_up_having_sent_nothing(
    k3_env, contracts, user_prop_target, user_prop_conn, monkeypatch
) -> None:
    k3 = k3_env
    added = [contracts.add() for _ in range(3)]
    real_lock = export_state.export_lock
    monkeypatch.setattr(export_state, "export_lock", lambda conn: real_lock(conn, timeout_s=1))
    held = HeldBeforeFirstSave()
    with Worker(_export(user_prop_target, held), name="first") as first:
        assert held.saving.wait(60)
        sent = _requests(k3)
        try:
            with pytest.raises(LockTimeout) as failure:
                export_contracts(user_prop_conn, K3CloudHook(), parse_field_map(None))
            assert _requests(k3) == sent  # the second run sent nothing to K3
        finally:
            held.go.set()
    database = user_prop_target.database
    assert str(failure.value).startswith(
        f"Another k3_contract_export run has held lock 'k3_contract_export.{database}' for over 1s"
    )
    assert first.result.counts()["created"] == 3
    assert k3.creates == 3 and k3.bill_count() == 3
    assert [len(k3.bills_by_number(c["contract_no"])) for c in added] == [1, 1, 1]
