"""The JSON API under /billing, with tokens from the simple auth manager's login API.

Users: ``editor`` (role OP: edit access to call400_billing) and ``viewer``
(role VIEWER: read access only), from AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS.
"""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import expected
import pytest
from billing_seed import DAY, FIXABLE_REASON, NOT_JSON_REASON, call_message

from sublessor_billing.db.connect import connect

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def quarantine_id(conn, marker: str) -> int:
    [(found,)] = expected.rows(
        conn, "SELECT id FROM call400_quarantine WHERE raw_body LIKE %s", (f"%{marker}%",)
    )
    return found


def test_an_editor_can_replay_and_a_viewer_gets_403(server, tokens, billing_db):
    conn = connect(billing_db)
    target = quarantine_id(conn, "q-fix-1")
    path = f"/billing/api/quarantine/{target}/replay"

    assert server.request("POST", path, body={})[0] == 401
    status, answer = server.request("POST", path, token=tokens["viewer"], body={})
    assert (status, answer) == (403, {"detail": "Forbidden"})
    assert expected.rows(
        conn, "SELECT COUNT(*) FROM sublessor_call_log_201409 WHERE call_id = 'q-fix-1'"
    ) == [(0,)]

    status, answer = server.request("POST", path, token=tokens["editor"], body={})
    assert (status, answer) == (200, {"id": target, "call_id": "q-fix-1", "logged": True})
    assert expected.rows(
        conn, "SELECT filter_rule FROM sublessor_call_log_201409 WHERE call_id = 'q-fix-1'"
    ) == [(0,)]
    [(actor, action, detail)] = expected.rows(
        conn,
        "SELECT actor, action, detail FROM billing_ops_action WHERE quarantine_id = %s",
        (target,),
    )
    assert (actor, action) == ("editor", "replay") and "body as received" in detail

    assert server.request("POST", path, token=tokens["editor"], body={})[0] == 409
    conn.close()


def test_a_viewer_never_sees_a_full_caller_number_an_editor_gets_the_raw_body(
    server, tokens, billing_db
):
    conn = connect(billing_db)
    target = quarantine_id(conn, "q-fix-1")
    full = re.compile(r"138-?0013-?8000|1390000\d{4}")
    viewer = tokens["viewer"]
    status, html = server.request("GET", f"/billing/?day={DAY}", token=viewer)
    assert status == 200 and "held by the judge" in html
    assert re.search(r"<td>\*{7}\d{4}</td>", html)  # the held call's caller, masked
    assert not full.search(html)
    for path in ("/billing/api/quarantine?status=all", f"/billing/api/summary?day={DAY}"):
        status, answer = server.request("GET", path, token=viewer)
        assert status == 200 and not full.search(json.dumps(answer)), path
    status, masked = server.request("GET", f"/billing/api/quarantine/{target}/body", token=viewer)
    assert status == 200 and masked["masked"] and masked["base64"] is None
    assert json.loads(masked["text"])["caller"] == "*********8000"
    status, raw = server.request(
        "GET", f"/billing/api/quarantine/{target}/body", token=tokens["editor"]
    )
    assert status == 200 and json.loads(raw["text"])["caller"] == "+86 138-0013-8000"
    conn.close()


def test_summary_answers_the_database_figures(server, tokens, billing_db):
    conn = connect(billing_db)
    status, s = server.request("GET", f"/billing/api/summary?day={DAY}", token=tokens["viewer"])
    assert status == 200
    want = expected.figures(conn, DAY)
    got = {
        "calls.total": s["calls"]["total"],
        "calls.valid": s["calls"]["valid"],
        "charges.success": s["charges"]["by_outcome"]["success"]["count"],
        "charges.orders": s["charges"]["orders"],
        "charges.revenue_fen": s["charges"]["revenue_fen"],
        "pending.count": s["pending"]["count"],
        "orders.held_back": s["held_back_orders"]["count"],
        "calls.held": s["held_calls"]["count"],
        "calls.rule.held": s["calls"]["held"],
        "offline.sublessors": s["offline"]["sublessors"],
        "offline.delivered": s["offline"]["delivered"],
        "offline.undelivered": s["offline"]["undelivered"],
        "quarantine.open": s["quarantine"]["open"],
        "k3.refused": s["k3_export"]["refused"],
        "k3.in_flight": s["k3_export"]["in_flight"],
    }
    got.update({f"calls.rule.{r}": n for r, n in s["calls"]["by_filter_rule"].items()})
    for outcome, figures in s["charges"]["by_outcome"].items():
        got[f"charges.{outcome}.count"] = figures["count"]
        got[f"charges.{outcome}.amount_fen"] = figures["amount_fen"]
    assert {k: str(v) for k, v in got.items()} == {k: want[k] for k in got}
    assert s["broker_phone_sync"]["high_water"].replace("T", " ") == want["broker.high_water"]
    hourly = {(h["hour"], "calls"): h["calls"] for h in s["hourly"]}
    hourly.update({(h["hour"], "charged"): h["charged"] for h in s["hourly"]})
    assert hourly == expected.hourly(conn, DAY)
    assert [r["id"] for r in s["quarantine"]["newest"]] == sorted(
        (i for (i,) in expected.rows(conn, "SELECT id FROM call400_quarantine")), reverse=True
    )
    assert [e["contract_no"] for e in s["k3_export"]["errors"]] != []
    assert s["timezone"] == "Asia/Shanghai" and s["day"] == DAY.isoformat()
    # Times the database wrote are shown in Asia/Shanghai, whatever the server's zone.
    decided = sorted(row["created_at"] for row in s["offline"]["rows"])
    assert decided == [f"{DAY}T{hour}:00:00" for hour in (10, 11, 12, 13)]

    bad = server.request("GET", "/billing/api/summary?day=2026-02-30", token=tokens["viewer"])
    assert bad[0] == 422 and "YYYY-MM-DD" in bad[1]["detail"]
    conn.close()


def test_replay_all_of_a_reason_discard_and_refusals(server, tokens, billing_db):
    conn = connect(billing_db)
    editor = tokens["editor"]
    status, result = server.request(
        "POST",
        "/billing/api/quarantine/replay-reason",
        token=editor,
        body={"reason": FIXABLE_REASON},
    )
    assert status == 200, result
    assert (result["replayed"], result["logged"], result["remaining"]) == (3, 3, 0)
    status, result = server.request(
        "POST",
        "/billing/api/quarantine/replay-reason",
        token=editor,
        body={"reason": NOT_JSON_REASON},
    )
    assert (result["replayed"], len(result["still_invalid"]), result["remaining"]) == (0, 2, 2)

    bad = quarantine_id(conn, "q-bad")
    still = server.request(
        "POST",
        f"/billing/api/quarantine/{bad}/replay",
        token=editor,
        body={"body": '{"call_id": 1}'},
    )
    assert still[0] == 422 and "still invalid" in still[1]["detail"]
    fixed = call_message("q-bad", datetime(2026, 3, 1, 9, 30)).decode()
    assert (
        server.request(
            "POST", f"/billing/api/quarantine/{bad}/replay", token=editor, body={"body": fixed}
        )[0]
        == 200
    )

    junk = quarantine_id(conn, "not json")
    form = server.request(
        "POST", f"/billing/api/quarantine/{junk}/discard", token=editor,
        body={"note": "x"}, content_type="text/plain",
    )  # fmt: skip
    assert form[0] == 415
    assert (
        server.request(
            "POST",
            f"/billing/api/quarantine/{junk}/discard",
            token=tokens["viewer"],
            body={"note": "x"},
        )[0]
        == 403
    )
    assert (
        server.request(
            "POST", f"/billing/api/quarantine/{junk}/discard", token=editor, body={"note": ""}
        )[0]
        == 422
    )
    assert server.request(
        "POST", f"/billing/api/quarantine/{junk}/discard", token=editor,
        body={"note": "platform test traffic"},
    )[0] == 200  # fmt: skip
    assert server.request("POST", "/billing/api/quarantine/999999/discard", token=editor,
                          body={"note": "x"})[0] == 404  # fmt: skip

    assert expected.rows(
        conn,
        "SELECT action, COUNT(*) FROM billing_ops_action WHERE actor = 'editor' GROUP BY action"
        " ORDER BY action",
    ) == [("discard", 1), ("replay", 4)]
    assert expected.rows(
        conn, "SELECT status, resolution FROM call400_quarantine WHERE id = %s", (junk,)
    ) == [("discarded", "platform test traffic")]
    status, actions = server.request("GET", "/billing/api/actions", token=tokens["viewer"])
    assert status == 200 and actions["actions"][0]["detail"] == "platform test traffic"
    conn.close()


def test_the_command_uses_the_same_airflow_connection(server, tokens, billing_db):
    """The quarantine command finds user_prop_db in Airflow's metadata database, like the page."""
    conn = connect(billing_db)
    env = {**server.env, "USER_PROP_DB_URL": "mysql://nobody:wrong@192.0.2.1:3306/elsewhere"}
    assert "AIRFLOW_CONN_USER_PROP_DB" not in env

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sublessor_billing.calls.quarantine", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    listed = command("list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert len(listed.stdout.splitlines()) == 6
    assert "USER_PROP_DB_URL is no longer read" in listed.stderr

    target = quarantine_id(conn, "q-fix-3")
    discarded = command("discard", str(target), "--reason", "duplicate of a test call")
    assert discarded.returncode == 0, discarded.stderr[-2000:]
    assert expected.rows(
        conn,
        "SELECT actor, action, detail FROM billing_ops_action WHERE quarantine_id = %s",
        (target,),
    ) == [(f"cli:{getpass.getuser()}", "discard", "duplicate of a test call")]
    status, actions = server.request("GET", "/billing/api/actions", token=tokens["viewer"])
    assert actions["actions"][0]["actor"] == f"cli:{getpass.getuser()}"
    conn.close()


def test_without_the_connection_the_api_says_what_to_define(server, tokens, billing_db):
    assert (
        server.request("DELETE", "/api/v2/connections/user_prop_db", token=tokens["editor"])[0]
        == 204
    )
    status, answer = server.request("GET", "/billing/api/summary", token=tokens["viewer"])
    assert status == 503
    assert "`user_prop_db` isn't defined" in answer["detail"]
    assert "Admin -> Connections -> user_prop_db" in answer["detail"]
