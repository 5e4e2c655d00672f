"""Quarantine actions: the command's replay/discard path, replay all of a reason, the action record."""

from __future__ import annotations

import getpass
import json

import pytest

from sublessor_billing.calls.quarantine import AlreadyResolved, StillInvalid, discard, main, replay
from sublessor_billing.calls.store import CoercedValue, is_data_error
from sublessor_billing.db.connect import connect
from sublessor_billing.ops.quarantine_ops import (
    body,
    list_rows,
    open_by_reason,
    replay_all_of_reason,
)

pytestmark = pytest.mark.integration


def message(call_id: str, **changes) -> bytes:
    body = {
        "call_id": call_id, "sublessor_id": 10086, "caller": "13800138000",
        "called": "4008123456", "status": 1, "start_time": "2026-03-01 10:15:02", "duration": 95,
    }  # fmt: skip
    body.update(changes)
    return json.dumps(body).encode()


def quarantine(conn, rows: list[tuple[bytes, str]]) -> list[int]:
    ids = []
    with conn.cursor() as cur:
        for body, reason in rows:
            cur.execute(
                "INSERT INTO call400_quarantine (body_sha256, raw_body, reason)"
                " VALUES (SHA2(%s, 256), %s, %s)",
                (body, body, reason),
            )
            ids.append(cur.lastrowid)
    conn.commit()
    return ids


def fetch(conn, sql: str, params=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = list(cur.fetchall())
    conn.rollback()
    return rows


def test_replay_of_the_body_as_received_is_logged_and_recorded(user_prop_conn) -> None:
    [first, second] = quarantine(
        user_prop_conn,
        [(message("r-1"), "the call log refused it: lock wait"), (message("r-2", status="1"), "status must be an integer, got string")],
    )  # fmt: skip
    outcome = replay(user_prop_conn, first, actor="alice")
    assert (outcome.call_id, outcome.logged) == ("r-1", True)
    with pytest.raises(
        StillInvalid, match="received body is still invalid: status must be an integer"
    ):
        replay(user_prop_conn, second, actor="alice")
    with pytest.raises(AlreadyResolved):
        replay(user_prop_conn, first, actor="alice")
    discard(user_prop_conn, second, "sender fixed, resent as r-2b", actor="bob")

    assert fetch(user_prop_conn, "SELECT call_id, filter_rule FROM sublessor_call_log_201409") == [
        ("r-1", 0)
    ]
    assert fetch(
        user_prop_conn,
        "SELECT actor, action, quarantine_id, detail FROM billing_ops_action ORDER BY id",
    ) == [
        ("alice", "replay", first, "replayed as call_id r-1: logged (body as received)"),
        ("bob", "discard", second, "sender fixed, resent as r-2b"),
    ]


def test_replay_all_of_a_reason_takes_that_exact_reason_only(user_prop_conn) -> None:
    upper = "call_type 'VIP' is not one of normal, callback"
    lower = "call_type 'vip' is not one of normal, callback"  # equal under the column's collation
    ids = quarantine(
        user_prop_conn,
        [
            (message("a-1"), upper),
            (message("a-2"), upper),
            (b"still not json", upper),
            (message("b-1"), lower),
        ],
    )
    assert {r["reason"]: r["count"] for r in open_by_reason(_cur(user_prop_conn))} == {
        upper: 3,
        lower: 1,
    }
    result = replay_all_of_reason(user_prop_conn, upper, actor="carol").as_dict()
    assert result["replayed"] == 2 and result["logged"] == 2
    assert result["still_invalid"] == {
        str(ids[2]): "body is not JSON: Expecting value: line 1 column 1 (char 0)"
    }
    assert result["remaining"] == 1
    assert [r["id"] for r in list_rows(_cur(user_prop_conn))] == [ids[3], ids[2]]
    assert fetch(
        user_prop_conn, "SELECT call_id FROM sublessor_call_log_201409 ORDER BY call_id"
    ) == [("a-1",), ("a-2",)]
    assert fetch(
        user_prop_conn, "SELECT COUNT(*) FROM billing_ops_action WHERE actor = 'carol'"
    ) == [(2,)]


def test_the_command_records_the_os_user_and_reads_the_airflow_connection(
    user_prop_conn, user_prop_target, airflow_connections, capsys
) -> None:
    airflow_connections("user_prop_db", user_prop_target.airflow_connection())
    [row] = quarantine(user_prop_conn, [(message("c-1"), "the call log refused it: deadlock")])
    assert main(["replay", str(row)]) == 0
    assert "call_id c-1 logged" in capsys.readouterr().out
    assert fetch(user_prop_conn, "SELECT actor FROM billing_ops_action") == [
        (f"cli:{getpass.getuser()}",)
    ]


def test_the_command_says_the_call_log_refused_a_body_and_changes_nothing(
    user_prop_conn, user_prop_target, airflow_connections, capsys
) -> None:
    airflow_connections("user_prop_db", user_prop_target.airflow_connection())
    [row] = quarantine(user_prop_conn, [(message("c-long", caller="+86 138-0013-8000"), "x")])
    with user_prop_conn.cursor() as cur:  # a call log that refuses a caller this long
        cur.execute("ALTER TABLE sublessor_call_log_201409 MODIFY caller VARCHAR(12) NOT NULL")
    assert main(["replay", str(row)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("The call log refused the body: ") and "caller" in err
    assert "stays quarantined" in err and "Traceback" not in err
    assert "13800138000" not in err
    assert fetch(user_prop_conn, "SELECT status FROM call400_quarantine") == [("quarantined",)]
    assert fetch(user_prop_conn, "SELECT COUNT(*) FROM sublessor_call_log_201409") == [(0,)]


def test_replay_all_reports_rows_the_call_log_refuses_or_that_fail_and_goes_on(
    user_prop_conn, user_prop_target
) -> None:
    reason = "the call log refused it: (1406, \"Data too long for column 'caller'\")"
    refused, locked, fine = quarantine(
        user_prop_conn,
        [
            (message("r-long", caller="+86 138-0013-8000"), reason),
            (message("r-locked"), reason),
            (message("r-fine"), reason),
        ],
    )
    with user_prop_conn.cursor() as cur:  # a call log that refuses a caller this long
        cur.execute("ALTER TABLE sublessor_call_log_201409 MODIFY caller VARCHAR(12) NOT NULL")
        cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
    other = connect(user_prop_target)  # someone else holds one row
    try:
        with other.cursor() as cur:
            cur.execute("SELECT id FROM call400_quarantine WHERE id = %s FOR UPDATE", (locked,))
        result = replay_all_of_reason(user_prop_conn, reason, actor="carol").as_dict()
    finally:
        other.rollback()
        other.close()
    assert result["replayed"] == 1 and result["remaining"] == 2
    assert list(result["still_invalid"]) == [str(refused)]
    assert result["still_invalid"][str(refused)].startswith("the call log refused it:")
    assert list(result["failed"]) == [str(locked)] and "1205" in result["failed"][str(locked)]
    again = replay_all_of_reason(user_prop_conn, reason, actor="carol").as_dict()
    assert (again["replayed"], again["remaining"], again["failed"]) == (1, 1, {})
    assert fetch(
        user_prop_conn, "SELECT call_id FROM sublessor_call_log_201409 ORDER BY call_id"
    ) == [("r-fine",), ("r-locked",)]
    with pytest.raises(CoercedValue, match="caller") as single:  # INSERT IGNORE would clip it
        replay(user_prop_conn, refused, actor="carol")
    assert is_data_error(single.value)


def test_previews_and_the_body_mask_the_caller_unless_raw_is_asked_for(user_prop_conn) -> None:
    json_id, text_id = quarantine(
        user_prop_conn,
        [
            (message("m-1", caller="+86 138-0013-8000"), "call_type 'VIP' is not one"),
            (b"caller=13900139000;called=4008123456", "body is not JSON"),
        ],
    )
    previews = {r["id"]: r["body_start"] for r in list_rows(_cur(user_prop_conn))}
    assert '"caller": "*********8000"' in previews[json_id]
    assert "138-0013-8000" not in previews[json_id] and "13800138000" not in previews[json_id]
    assert previews[text_id] == "caller=*******9000;called=******3456"
    masked = body(_cur(user_prop_conn), json_id)
    assert masked["masked"] and masked["base64"] is None
    assert json.loads(masked["text"])["caller"] == "*********8000"
    raw = body(_cur(user_prop_conn), json_id, unmasked=True)
    assert json.loads(raw["text"])["caller"] == "+86 138-0013-8000"
    assert body(_cur(user_prop_conn), text_id)["text"] == "caller=*******9000;called=******3456"


def _cur(conn):
    conn.rollback()
    return conn.cursor()


def test_the_command_refuses_a_discard_reason_longer_than_the_column(
    user_prop_conn, capsys
) -> None:
    [row] = quarantine(user_prop_conn, [(message("d-1"), "body is not JSON")])
    with pytest.raises(SystemExit) as refused:
        main(["discard", str(row), "--reason", "x" * 501])
    assert refused.value.code == 2 and "1 to 500 characters" in capsys.readouterr().err
    assert fetch(user_prop_conn, "SELECT status FROM call400_quarantine") == [("quarantined",)]
