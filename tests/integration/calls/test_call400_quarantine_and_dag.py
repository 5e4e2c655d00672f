"""The quarantine command, and `airflow dags test call400_billing` end to end."""

from __future__ import annotations

import pytest
from support.airflow import airflow_env, dags_test
from support.calls import call_body, drain_queued

from sublessor_billing.calls.quarantine import main
from sublessor_billing.sandbox.listing_service import ListingService
from sublessor_billing.sandbox.payment_center import PaymentCenter

pytestmark = pytest.mark.integration


def test_list_replay_and_discard(call400, amqp_hook, tmp_path, capsys) -> None:
    call400.publish([call_body("q1", duration="95"), call_body("q2", call_type="vip")])
    conn = call400.db()
    drain_queued(call400, amqp_hook.channel(), conn)
    conn.close()
    assert main(["list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and "duration must be an integer" in listed[0]
    first_id = int(listed[0].split("\t")[0])

    still_bad = tmp_path / "bad.json"
    still_bad.write_bytes(call_body("q1", duration=-1))
    assert main(["replay", str(first_id), "--body", str(still_bad)]) == 1
    assert "still invalid" in capsys.readouterr().err
    assert call400.query("SELECT COUNT(*) FROM sublessor_call_log_201409") == [(0,)]

    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(call_body("q1", duration=95))
    assert main(["replay", str(first_id), "--body", str(fixed)]) == 0
    assert call400.query(
        "SELECT call_id, duration, filter_rule FROM sublessor_call_log_201409"
    ) == [("q1", 95, 0)]
    assert main(["replay", str(first_id), "--body", str(fixed)]) == 1
    assert "already replayed" in capsys.readouterr().err

    assert main(["discard", str(first_id + 1), "--reason", "test traffic"]) == 0
    rows = call400.query("SELECT status, resolution FROM call400_quarantine ORDER BY id")
    assert rows[0][0] == "replayed" and "q1" in rows[0][1]
    assert rows[1] == ("discarded", "test traffic")
    capsys.readouterr()
    assert main(["list"]) == 0
    assert capsys.readouterr().out == ""


def call400_airflow_env(call400, home, **connections) -> dict[str, str]:
    """The environment of `airflow dags test call400_billing` on this queue and database."""
    return airflow_env(
        home,
        connections={
            "call400_amqp": call400.amqp_connection(),
            "user_prop_db": call400.target.airflow_connection(),
            **connections,
        },
        variables={"call400_sensor_timeout": 2},
    )


def billing_run(env: dict[str, str]):
    run = dags_test(env, "call400_billing")
    assert (run.returncode, run.state) == (0, "success"), run.output[-6000:]
    return run


def test_dags_test_drains_judges_and_ends_on_an_empty_queue(call400, airflow_home) -> None:
    payment = PaymentCenter({"app": "key"}).start()
    listing = ListingService({"app": "key"}).start()
    try:
        payment.set_account(10086, 100 * 4000)
        env = call400_airflow_env(
            call400,
            airflow_home,
            **{
                conn_id: {"conn_type": "http", "host": "http://127.0.0.1", "port": server.port,
                          "login": "app", "password": "key"}
                for conn_id, server in (("payment_api", payment), ("listing_api", listing))
            },
        )  # fmt: skip
        call400.publish(
            [
                call_body("e1", start_time="2026-03-01 10:00:00"),
                call_body("e2", start_time="2026-03-01 11:00:00"),
                call_body("e1"),
                b"not json",
                call_body("e3", caller="13900139000", status=0),
            ]
        )
        billing_run(env)
        assert call400.query(
            "SELECT call_id, filter_rule FROM sublessor_call_log_201409 ORDER BY call_id"
        ) == [("e1", 1), ("e2", 4), ("e3", 2)]
        assert call400.query("SELECT COUNT(*) FROM call400_quarantine") == [(1,)]
        assert call400.query("SELECT call_id, status FROM sublessor_call_payment_log_201409") == [
            ("e1", "success")
        ]
        assert call400.ready() == 0

        # An empty queue but a call left unjudged (by a crash): that is work, the pass judges it.
        call400.execute(
            "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, caller_normalized,"
            " called, status, start_time, duration) VALUES ('left', 1, '1', '1', '400', 1, NOW(), 60)"
        )
        run = billing_run(env)
        assert "'unjudged': True" in run.output
        assert call400.query(
            "SELECT filter_rule FROM sublessor_call_log_201409 WHERE call_id = 'left'"
        ) == [(1,)]

        # Nothing at all: the wait times out and is skipped, the pass still runs, the run is green.
        run = billing_run(env)
        assert "skipped" in run.tasks.values(), run.tasks
        assert payment.state()["charges"] == 1 and payment.state()["double_charged"] == []
    finally:
        payment.stop()
        listing.stop()
