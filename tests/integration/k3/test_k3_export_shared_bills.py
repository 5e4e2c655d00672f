"""Two contracts already sharing one K3 bill: migration 070 must not stop billing; the export holds them."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException
from k3_seed import EDITED_AT, Contracts

from sublessor_billing.db import migrate
from sublessor_billing.db.connect import connect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _database_at_migration_050(database_factory, monkeypatch):
    target = database_factory("k3shared")
    conn = connect(target)
    every = migrate.available_migrations()
    with monkeypatch.context() as patch:
        patch.setattr(
            migrate, "available_migrations", lambda: [m for m in every if m.version <= 50]
        )
        migrate.apply_migrations(conn)
    migrate.apply_external_ddl(conn, "user_prop_db")
    return target, conn


def _exported(contracts: Contracts, contract: dict, fid: int) -> None:
    contracts.execute(
        "INSERT INTO k3_contract_export_state (contract_id, contract_no, k3_id, k3_number,"
        " exported_version, state) VALUES (%s, %s, %s, %s, %s, 'exported')",
        (contract["id"], contract["contract_no"], fid, contract["contract_no"], EDITED_AT),
    )


def test_two_contracts_sharing_a_bill_are_held_and_billing_goes_on(
    run_export, k3, database_factory, monkeypatch, airflow_connections
) -> None:
    target, conn = _database_at_migration_050(database_factory, monkeypatch)
    contracts = Contracts(conn)
    first, second, alone, new = (contracts.add() for _ in range(4))
    shared = k3.add_bill({"FBillNo": first["contract_no"]})
    _exported(contracts, first, shared)
    _exported(contracts, second, shared)  # what the old recovery could leave behind
    _exported(contracts, alone, k3.add_bill({"FBillNo": alone["contract_no"]}))
    airflow_connections("user_prop_db", target.airflow_connection())

    # Every billing task opens user_prop_db first, which migrates it.
    from sublessor_airflow.hooks.mysql import user_prop_db

    billing = user_prop_db()
    with billing.cursor() as cur:
        cur.execute("SELECT version FROM schema_version")
        assert {row[0] for row in cur.fetchall()} == {
            m.version for m in migrate.available_migrations()
        }
        cur.execute(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called,"
            " status, start_time, duration) VALUES ('c-1', 1, '1', '4', 1, NOW(), 60)"
        )
        cur.execute("SELECT contract_id, k3_id FROM k3_contract_export_conflict")
        assert sorted(cur.fetchall()) == [(first["id"], shared), (second["id"], shared)]
    billing.commit()
    billing.close()
    for contract in (first, second):
        state = contracts.state(contract["id"])
        assert state["state"] == "conflict" and state["k3_id"] is None
        assert str(shared) in state["last_error"]

    # CRM renames one of them and gives its old number, the shared bill's, to a new contract.
    contracts.rename(first["id"], "HT-2026-R001")
    first = {**first, "contract_no": "HT-2026-R001"}
    taker = contracts.add(contract_no=k3.bills[shared]["FBillNo"])

    for _ in range(2):  # held run after run until an operator decides
        with pytest.raises(AirflowException) as failure:
            run_export()
        text = str(failure.value)
        for contract in (first, second):
            assert f"{contract['contract_no']} (id {contract['id']})" in text
        assert "k3_contract_export_conflict" in text and "docs/k3_contract_export.md" in text
        assert k3.creates == 2 and k3.updates == 0  # only the new and the taker were created
        assert k3.bills_by_number(second["contract_no"]) == []
    assert contracts.state(new["id"])["state"] == "exported"
    assert contracts.state(taker["id"])["k3_id"] not in (None, shared)  # the set-aside bill is held

    # The operator's fix (docs): the owner gets the bill back, the other is looked up afresh.
    contracts.execute(
        "UPDATE k3_contract_export_state SET k3_id = %s, state = 'refused' WHERE contract_id = %s",
        (shared, first["id"]),
    )
    contracts.execute(
        "DELETE FROM k3_contract_export_state WHERE contract_id = %s", (second["id"],)
    )
    counts, _ = run_export()
    assert counts["created"] == 1 and counts["updated"] == 1 and counts["refused"] == 0
    assert contracts.state(first["id"])["k3_id"] == shared
    [own] = k3.bills_by_number(second["contract_no"])
    assert contracts.state(second["id"])["k3_id"] == own["FID"] != shared
    conn.close()
