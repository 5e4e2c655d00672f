"""The billing_alerts check against the real database and a real webhook receiver on loopback."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

import pytest
from webhook import WebhookReceiver

from sublessor_airflow.alerts import notifier
from sublessor_airflow.alerts.checks import run_billing_checks
from sublessor_airflow.alerts.notifier import AlertWebhookError
from sublessor_billing.db.connect import connect
from sublessor_billing.ops.alerts import AlertSettings, evaluate
from sublessor_billing.ops.clock import TIMEZONE

pytestmark = pytest.mark.integration
SETTINGS = AlertSettings(pending_minutes=30, no_success_minutes=15, repeat_minutes=60)


class RecordingStats:
    """A metrics backend for Airflow's Stats that keeps what it is given."""

    def __init__(self) -> None:
        self.gauges: dict[str, float] = {}
        self.counters: Counter = Counter()

    def gauge(self, stat, value, rate=1, delta=False, *, tags=None) -> None:
        self.gauges[stat] = value

    def incr(self, stat, count=1, rate=1, *, tags=None) -> None:
        self.counters[stat] += count

    def decr(self, stat, count=1, rate=1, *, tags=None) -> None:
        self.counters[stat] -= count


@pytest.fixture
def stats(monkeypatch) -> RecordingStats:
    from airflow.sdk._shared.observability.metrics import stats as sdk_stats

    recorder = RecordingStats()
    monkeypatch.setattr(sdk_stats, "_factory", lambda: recorder)
    monkeypatch.setattr(sdk_stats, "_backend", None)
    monkeypatch.setattr(sdk_stats, "_export_legacy_names", False)
    return recorder


@pytest.fixture
def billing(user_prop_conn, user_prop_target, airflow_connections):
    """Today: three calls (two valid), one charged, one pending for 45 minutes; one quarantined."""
    airflow_connections("user_prop_db", user_prop_target.airflow_connection())
    now = datetime.now(TIMEZONE).replace(tzinfo=None)
    today = now.replace(hour=0, minute=0, second=1)
    execute(
        user_prop_conn,
        "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
        " start_time, duration, filter_rule, judged_at) VALUES"
        " ('t1', 1, '1', '400', 1, %s, 60, 1, NOW(3) - INTERVAL 1 HOUR),"
        " ('t2', 1, '2', '400', 1, %s, 60, 1, NOW(3) - INTERVAL 1 HOUR),"
        " ('t3', 1, '3', '400', 0, %s, 60, 2, NOW(3) - INTERVAL 1 HOUR)",
        (today, today, today),
    )
    execute(
        user_prop_conn,
        "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject,"
        " status, created_at) VALUES ('t1', 1, 4000, 's', 'success', NOW(3)),"
        " ('t2', 1, 4000, 's', 'pending', NOW(3) - INTERVAL 45 MINUTE)",
    )
    quarantine(user_prop_conn, b"first")
    return user_prop_conn


def execute(conn, sql: str, params=()) -> None:
    with conn.cursor() as cur:
        cur.execute(sql, params)
    conn.commit()


def quarantine(conn, body: bytes, *, settled: bool = True) -> None:
    """A quarantined message, received two minutes ago (settled) or now."""
    execute(
        conn,
        "INSERT INTO call400_quarantine (body_sha256, raw_body, reason, received_at)"
        " VALUES (SHA2(%s, 256), %s, 'body is not JSON', NOW(3) - INTERVAL %s MINUTE)",
        (body, body, 2 if settled else 0),
    )


def test_alerts_fire_once_repeat_never_early_resolve_and_metrics_go_out(
    billing, airflow_connections, stats
):
    runs = {"call400_billing": 5}

    def check() -> dict:
        return run_billing_checks(successful_runs_of=runs.__getitem__, settings=SETTINGS)

    with WebhookReceiver() as hook:
        airflow_connections("billing_alert_webhook", hook.connection(**{"X-Alert-Token": "s3cret"}))

        first = check()
        assert hook.alerts() == [("pending_too_old", "firing")]
        assert hook.received[0]["oldest_age_seconds"] >= 45 * 60
        assert hook.headers[0]["X-Alert-Token"] == "s3cret"
        assert first["sent"] == 1
        assert {
            name: stats.gauges[f"sublessor_billing.{name}"]
            for name in (
                "calls.today.total", "calls.today.rule_1", "calls.today.rule_2",
                "charges.today.success", "revenue.today_fen",
                "pending.count", "quarantine.open",
            )
        } == {
            "calls.today.total": 3, "calls.today.rule_1": 2, "calls.today.rule_2": 1,
            "charges.today.success": 1, "revenue.today_fen": 4000,
            "pending.count": 1, "quarantine.open": 1,
        }  # fmt: skip
        assert stats.gauges["sublessor_billing.pending.oldest_age_seconds"] >= 45 * 60

        check()  # nothing new: a firing alert is not repeated before repeat_minutes
        assert len(hook.received) == 1

        quarantine(billing, b"second")
        quarantine(billing, b"third")
        check()
        assert hook.alerts()[1:] == [("quarantine_growth", "firing")]
        assert (hook.received[1]["new"], hook.received[1]["open"]) == (2, 3)

        execute(billing, "UPDATE sublessor_call_payment_log_201409 SET status = 'success'")
        check()
        assert hook.alerts()[2:] == [("pending_too_old", "resolved")]

        # No successful call400_billing run since the count was last seen to grow, 20 min ago.
        execute(
            billing,
            "UPDATE billing_alert SET since = NOW(3) - INTERVAL 20 MINUTE"
            " WHERE name = 'no_successful_billing_run'",
        )
        check()
        assert hook.alerts()[3:] == [("no_successful_billing_run", "firing")]
        runs["call400_billing"] = 6
        check()
        assert hook.alerts()[4:] == [("no_successful_billing_run", "resolved")]
    assert stats.counters["sublessor_billing.alerts.pending_too_old"] == 2


def test_judged_calls_are_counted_once_per_window(billing, stats):
    run_billing_checks(successful_runs_of=lambda dag_id: 0, settings=SETTINGS)
    assert not [name for name in stats.counters if ".calls.judged." in name]  # first: cursor only
    execute(
        billing,
        "UPDATE job_cursor SET position_time = NOW() - INTERVAL 10 MINUTE"
        " WHERE name = 'billing_metrics_judged'",
    )
    execute(
        billing,
        "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
        " start_time, duration, filter_rule, judged_at) VALUES"
        " ('j1', 1, '1', '400', 1, NOW(), 60, 1, NOW(3) - INTERVAL 5 MINUTE),"
        " ('j2', 1, '2', '400', 1, NOW(), 60, 1, NOW(3) - INTERVAL 4 MINUTE),"
        " ('j3', 1, '3', '400', 1, NOW(), 60, 4, NOW(3) - INTERVAL 3 MINUTE),"
        " ('j4', 1, '4', '400', 1, NOW(), 60, 1, NOW(3))",  # still settling: next window
    )
    run_billing_checks(successful_runs_of=lambda dag_id: 0, settings=SETTINGS)
    run_billing_checks(successful_runs_of=lambda dag_id: 0, settings=SETTINGS)  # a rerun
    assert {k: v for k, v in stats.counters.items() if ".calls.judged." in k} == {
        "sublessor_billing.calls.judged.rule_1": 2,
        "sublessor_billing.calls.judged.rule_4": 1,
    }


def test_a_webhook_that_fails_fails_the_check_and_the_retry_sends_it(
    billing, airflow_connections, stats
):
    with WebhookReceiver() as hook:
        airflow_connections("billing_alert_webhook", hook.connection())
        hook.status = 500
        with pytest.raises(AlertWebhookError, match="billing_alert_webhook"):
            run_billing_checks(successful_runs_of=lambda dag_id: 0, settings=SETTINGS)
        hook.status = 200
        run_billing_checks(successful_runs_of=lambda dag_id: 0, settings=SETTINGS)
    assert hook.alerts() == [("pending_too_old", "firing")]


def test_without_the_webhook_connection_alerts_are_off_and_said_once(
    billing, stats, caplog, monkeypatch
):
    monkeypatch.setattr(notifier, "_reported_missing", set())
    caplog.set_level(logging.WARNING)
    first = run_billing_checks(successful_runs_of=lambda dag_id: 0, settings=SETTINGS)
    execute(billing, "UPDATE billing_alert SET notified_at = NOW(3) - INTERVAL 2 HOUR")
    second = run_billing_checks(successful_runs_of=lambda dag_id: 0, settings=SETTINGS)
    assert [n["alert"] for n in first["notices"]] == ["pending_too_old"]
    assert [n["alert"] for n in second["notices"]] == ["pending_too_old"]  # repeat was due
    assert first["sent"] == second["sent"] == 0
    off = [r for r in caplog.records if "Billing alerts are off" in r.getMessage()]
    assert len(off) == 1
    assert stats.gauges["sublessor_billing.pending.count"] == 1  # metrics go out regardless


def test_the_failure_payload_names_the_task_and_its_error():
    class Ti:
        dag_id, task_id, run_id, try_number = "k3_contract_export", "export_contracts", "r1", 4

    payload = notifier.task_failure_payload(
        {"ti": Ti(), "run_id": "r1", "exception": RuntimeError("K3 refused HT-1")}
    )
    assert payload["summary"] == (
        "k3_contract_export.export_contracts failed in run r1: RuntimeError: K3 refused HT-1"
    )
    assert (payload["alert"], payload["try_number"]) == ("task_failed", 4)
    assert payload["dedup_key"] == "task_failed.k3_contract_export.export_contracts"


def test_the_failure_payload_of_a_mapped_task_names_its_map_index():
    class Ti:
        dag_id, task_id, run_id, try_number, map_index = (
            "call400_billing",
            "charge_shard",
            "r2",
            4,
            1,
        )

    payload = notifier.task_failure_payload({"ti": Ti(), "exception": RuntimeError("pending")})
    assert payload["summary"].startswith("call400_billing.charge_shard[1] failed in run r2")
    assert payload["dedup_key"] == "task_failed.call400_billing.charge_shard[1]"
    assert (payload["task_id"], payload["map_index"]) == ("charge_shard", 1)


def test_held_calls_and_held_back_orders_have_their_own_alerts_and_gauges(
    billing, airflow_connections, stats
):
    execute(billing, "UPDATE sublessor_call_payment_log_201409 SET status = 'success'")
    execute(
        billing,
        "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount,"
        " subject, status, created_at) VALUES (5, 'by-hand', 1, 4000, 's', 'pending',"
        " NOW(3) - INTERVAL 2 HOUR)",
    )
    execute(
        billing,
        "UPDATE sublessor_call_log_201409 SET filter_rule = 0, judged_at = NOW(3),"
        " held_reason = 'start_time is not a readable date', held_count = 1 WHERE call_id = 't3'",
    )
    with WebhookReceiver() as hook:
        airflow_connections("billing_alert_webhook", hook.connection())
        check = lambda: run_billing_checks(successful_runs_of=lambda _: 5, settings=SETTINGS)  # noqa: E731
        check()
        # The held-back row is two hours old but never sent: not "pending too old".
        assert sorted(hook.alerts()) == [("held_back_orders", "firing"), ("held_calls", "firing")]
        held_back = next(r for r in hook.received if r["alert"] == "held_back_orders")
        assert held_back["order_ids"] == [5] and "OrderIdOutOfRange" in held_back["summary"]
        assert {
            name: stats.gauges[f"sublessor_billing.{name}"]
            for name in ("pending.count", "orders.held_back", "calls.held", "calls.today.rule_0")
        } == {"pending.count": 0, "orders.held_back": 1, "calls.held": 1, "calls.today.rule_0": 0}

        execute(billing, "DELETE FROM sublessor_call_payment_log_201409 WHERE id = 5")
        execute(
            billing, "UPDATE sublessor_call_log_201409 SET held_reason = NULL, judged_at = NULL"
        )
        check()
        assert sorted(hook.alerts()[2:]) == [
            ("held_back_orders", "resolved"),
            ("held_calls", "resolved"),
        ]


def test_quarantine_growth_never_skips_a_row_committed_after_a_higher_id(
    user_prop_conn, user_prop_target
):
    def growth() -> list[int]:
        with user_prop_conn.cursor() as cur:
            notices = evaluate(cur, SETTINGS, successful_runs=1)
        user_prop_conn.commit()
        return [n.details["new"] for n in notices if n.alert == "quarantine_growth"]

    assert growth() == []  # the baseline
    slow = connect(user_prop_target)  # its insert takes the lower id and commits last
    try:
        with slow.cursor() as cur:
            cur.execute(
                "INSERT INTO call400_quarantine (body_sha256, raw_body, reason)"
                " VALUES (SHA2('slow', 256), 'slow', 'body is not JSON')"
            )
        quarantine(user_prop_conn, b"fast", settled=False)
        assert growth() == []  # nothing settled yet
        slow.commit()
    finally:
        slow.close()
    execute(
        user_prop_conn,
        "UPDATE call400_quarantine SET received_at = received_at - INTERVAL 2 MINUTE",
    )
    assert growth() == [2]
    assert growth() == []


def test_a_notice_not_sent_stays_due_and_fewer_runs_are_not_a_success(
    billing, airflow_connections, stats
):
    runs = {"call400_billing": 5}

    def check() -> dict:
        return run_billing_checks(successful_runs_of=runs.__getitem__, settings=SETTINGS)

    assert check()["sent"] == 0  # no webhook connection: alerts off
    with WebhookReceiver() as hook:
        airflow_connections("billing_alert_webhook", hook.connection())
        check()  # within repeat_minutes, but the first notice never went out
        assert hook.alerts() == [("pending_too_old", "firing")]
        # Runs deleted from Airflow's database make the count drop: still no success.
        execute(
            billing,
            "UPDATE billing_alert SET since = NOW(3) - INTERVAL 20 MINUTE"
            " WHERE name = 'no_successful_billing_run'",
        )
        runs["call400_billing"] = 3
        check()
        assert hook.alerts()[1:] == [("no_successful_billing_run", "firing")]


FAILED_TASK = {"run_id": "r7", "exception": RuntimeError("payment center answered HTTP 503")}


class _Ti:
    dag_id, task_id, run_id, try_number = "call400_billing", "bill", "r7", 4


def test_a_failure_alert_is_tried_again_when_the_receiver_blips(airflow_connections):
    with WebhookReceiver() as hook:
        airflow_connections("billing_alert_webhook", hook.connection())
        hook.answers = [503, 502]
        notifier.BillingAlertNotifier(retry_wait_s=0.01).notify({**FAILED_TASK, "ti": _Ti()})
        assert hook.posts == 3
    assert hook.alerts() == [("task_failed", "firing")]


def test_a_failure_alert_gives_up_after_three_tries_and_a_4xx_at_once(airflow_connections):
    sender = notifier.BillingAlertNotifier(retry_wait_s=0.01)
    with WebhookReceiver() as hook:
        airflow_connections("billing_alert_webhook", hook.connection())
        hook.status = 500
        with pytest.raises(AlertWebhookError, match="3 attempts at most"):
            sender.notify({**FAILED_TASK, "ti": _Ti()})
        assert hook.posts == 3
        hook.status = 404
        with pytest.raises(AlertWebhookError, match="HTTP 404"):
            sender.notify({**FAILED_TASK, "ti": _Ti()})
        assert hook.posts == 4  # a wrong URL is not worth a second try
    assert hook.received == []


def test_failed_runs_of_every_billing_dag_are_alerted_once_from_a_baseline(
    billing, airflow_connections, stats
):
    failed = {"broker_phone_sync": 2, "call400_billing": 7, "accounting_income": 0,
              "k3_contract_export": 1}  # fmt: skip

    def check() -> dict:
        return run_billing_checks(
            successful_runs_of=lambda _: 5, failed_runs_of=failed.__getitem__, settings=SETTINGS
        )

    with WebhookReceiver() as hook:
        airflow_connections("billing_alert_webhook", hook.connection())
        check()  # the baseline: failures before the first check are not news
        assert [a for a in hook.alerts() if a[0] == "run_failed"] == []
        failed["call400_billing"] += 2  # e.g. a task OOM-killed: no failure callback ran
        failed["k3_contract_export"] += 1
        check()
        runs = [r for r in hook.received if r["alert"] == "run_failed"]
        assert [(r["dag_id"], r["new_failed_runs"], r["dedup_key"]) for r in runs] == [
            ("call400_billing", 2, "run_failed.call400_billing"),
            ("k3_contract_export", 1, "run_failed.k3_contract_export"),
        ]
        check()  # nothing new: nothing said
        assert len([r for r in hook.received if r["alert"] == "run_failed"]) == 2
        hook.status = 500
        failed["accounting_income"] = 1
        with pytest.raises(AlertWebhookError):
            run_billing_checks(
                successful_runs_of=lambda _: 5,
                failed_runs_of=failed.__getitem__,
                settings=SETTINGS,
                notifier=notifier.BillingAlertNotifier(retry_wait_s=0.01),
            )
        hook.status = 200
        check()  # not sent before: the retry says it
    assert [r["dag_id"] for r in hook.received if r["alert"] == "run_failed"][2:] == [
        "accounting_income"
    ]
    assert stats.counters["sublessor_billing.alerts.run_failed"] == 3


def test_a_task_that_lost_its_process_is_alerted_with_the_reason():
    payload = notifier.task_failure_payload({"ti": _Ti(), "run_id": "r7"})
    assert payload["exception"] is None
    assert payload["summary"].startswith("call400_billing.bill failed in run r7: no exception")
    assert "heartbeat timeout" in payload["summary"]


def test_a_malformed_webhook_url_is_not_retried(airflow_connections):
    airflow_connections(
        "billing_alert_webhook", {"conn_type": "http", "host": "http://exa mple.invalid:99999/x"}
    )
    attempts = []

    class Counting(notifier.BillingAlertNotifier):
        def _post_once(self, payload: dict, timeout: float) -> None:
            attempts.append(payload["alert"])
            super()._post_once(payload, timeout)

    with pytest.raises(AlertWebhookError, match="billing_alert_webhook"):
        Counting(retry_wait_s=0.01).notify({**FAILED_TASK, "ti": _Ti()})
    assert attempts == ["task_failed"]  # a URL that cannot be right is not tried again
