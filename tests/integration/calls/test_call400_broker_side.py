"""The RabbitMQ hook, the trigger and the sensor against the real broker and database."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import pika
import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred
from support.amqp import AMQP_URL
from support.calls import call_body
from support.connections import amqp_connection
from support.waiting import wait_until

from sublessor_airflow.hooks.amqp import Call400AmqpHook
from sublessor_airflow.sensors.call400_work import Call400WorkSensor
from sublessor_airflow.triggers.call400_work import Call400WorkTrigger
from sublessor_billing.payments import flags

pytestmark = pytest.mark.integration


def first_event(trigger):
    async def run():
        return await anext(trigger.run())

    return asyncio.run(run()).payload


def test_topology_is_idempotent_and_an_existing_queue_is_used_as_is(
    amqp_names, airflow_connections
) -> None:
    broker = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        # An operator created the queue beforehand, with arguments our declare would not use.
        broker.channel().queue_declare(
            amqp_names["queue"], durable=True, arguments={"x-queue-type": "quorum"}
        )
        airflow_connections("call400_amqp", amqp_connection(amqp_names))
        hook = Call400AmqpHook()
        hook.ensure_topology()
        hook.ensure_topology()
        channel = broker.channel()
        channel.basic_publish(amqp_names["exchange"], amqp_names["routing_key"], b"{}")
        wait_until(lambda: hook.message_count() == 1, 10, "the published message to be queued")
        assert hook.get_conn() is hook.get_conn()
        hook.close()
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("port", "password"), [(5672, "not-the-password-xyz"), (1, "guest")], ids=["bad-login", "down"]
)
def test_unreachable_broker_error_names_connection_and_address(
    amqp_names, airflow_connections, port, password
) -> None:
    airflow_connections(
        "call400_amqp",
        {**amqp_connection(amqp_names), "port": port, "password": password, "schema": "billing-vh"},
    )
    with pytest.raises(ConnectionError) as caught:
        Call400AmqpHook().get_conn()
    message = str(caught.value)
    assert "'call400_amqp'" in message and f"127.0.0.1:{port}/billing-vh" in message
    assert "not-the-password-xyz" not in message


def trigger(**changes) -> Call400WorkTrigger:
    kwargs = {
        "amqp_conn_id": "call400_amqp",
        "user_prop_conn_id": "user_prop_db",
        "started_at": time.time(),
        "wait_timeout": 30,
        "poll_interval": 0.2,
    }
    return Call400WorkTrigger(**{**kwargs, **changes})


@pytest.fixture
def billed(call400):
    """The queue and user_prop_db after a pass: the history's end recorded (payments/flags.py)."""
    conn = call400.db()
    try:
        flags.flag_history(conn)
    finally:
        conn.close()
    return call400


def leave_pending_order(env) -> None:
    env.execute(
        "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject)"
        " VALUES ('left', 1, 4000, '400 call left')"
    )


def mysql_connection(env, **changes) -> dict:
    return {**env.target.airflow_connection(), **changes}


def test_trigger_times_out_when_there_is_no_work(billed) -> None:
    assert first_event(trigger(wait_timeout=1)) == {"status": "timeout", "queue": billed.queue}


def test_trigger_fires_on_messages_without_consuming_them(billed) -> None:
    billed.publish([call_body("t1"), call_body("t2")])
    assert first_event(trigger()) == {"status": "work", "messages": 2}
    first_event(trigger())
    assert billed.ready() == 2


def test_trigger_fires_on_leftovers_in_the_database(billed) -> None:
    """An unjudged call, then a pending order: work although the queue is empty."""
    billed.execute(
        "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
        " start_time, duration) VALUES ('left', 1, '1', '400', 1, '2026-03-01 10:00:00', 60)"
    )
    assert first_event(trigger()) == {"status": "work", "unjudged": True}
    billed.execute("UPDATE sublessor_call_log_201409 SET filter_rule = 2, judged_at = NOW(3)")
    leave_pending_order(billed)
    assert first_event(trigger()) == {"status": "work", "pending_orders": True}


def test_trigger_fires_when_the_queue_is_missing_so_that_the_pass_declares_it(billed) -> None:
    broker = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    broker.channel().queue_delete(billed.queue)
    broker.close()
    assert first_event(trigger()) == {"status": "work", "queue_missing": True}


def test_trigger_ends_the_task_itself_when_started_by_the_scheduler(billed) -> None:
    from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent

    billed.publish([call_body("t1")])
    event = asyncio.run(anext(trigger(end_task=True).run()))
    assert isinstance(event, TaskSuccessEvent) and event.xcoms == {"return_value": {"messages": 1}}
    billed.purge()
    # A deadline already past (call400_sensor_timeout is at least 1 s).
    expired = trigger(end_task=True, started_at=time.time() - 5, wait_timeout=1)
    event = asyncio.run(anext(expired.run()))
    assert isinstance(event, TaskSkippedEvent)


def test_trigger_polls_on_through_a_database_outage(billed, airflow_connections) -> None:
    airflow_connections("user_prop_db", {"conn_type": "mysql", "host": "127.0.0.1", "port": 1})
    assert first_event(trigger(wait_timeout=1))["status"] == "timeout"


def test_trigger_reads_the_database_while_the_broker_cannot_be_reached(
    billed, airflow_connections
) -> None:
    """A pending order is settled although the triggerer cannot reach RabbitMQ."""
    leave_pending_order(billed)
    airflow_connections("call400_amqp", {**billed.amqp_connection(), "port": 1})
    assert first_event(trigger(wait_timeout=5)) == {"status": "work", "pending_orders": True}


@pytest.mark.parametrize("down", ["broker", "database"])
def test_checks_failing_for_fail_after_seconds_count_as_work_and_say_why(
    billed, airflow_connections, caplog, down
) -> None:
    """So that the pass runs (and fails loudly if the fault is real) instead of the run waiting
    out its deadline and ending green. No password is ever logged or reported."""
    secret = "not-the-password-xyz"
    if down == "broker":
        airflow_connections("call400_amqp", {**billed.amqp_connection(), "password": secret})
    else:
        airflow_connections("user_prop_db", mysql_connection(billed, password=secret))
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        event = first_event(trigger(wait_timeout=30, fail_after=1))
    assert 1 <= time.monotonic() - started < 10
    assert set(event) == {"status", "check_failed"} and event["status"] == "work", event
    name = {"broker": "call400_amqp", "database": "user_prop_db"}[down]
    assert event["check_failed"].startswith(f"{down} ({name}): ConnectionError"), event
    assert secret not in event["check_failed"] and secret not in caplog.text
    assert "Looking for work failed" in caplog.text


@pytest.mark.parametrize("where", ["extras honoured", "socket missing"])
def test_trigger_opens_user_prop_db_as_the_bill_task_does(
    billed, airflow_connections, where
) -> None:
    """The connection's extras count (here ``unix_socket``): what ``bill`` can open, the trigger
    can, and what it cannot, the trigger reports."""
    from sublessor_airflow.hooks.mysql import BillingMySqlHook

    socket = str(billed.query("SELECT @@socket")[0][0])
    if not os.path.exists(socket):
        pytest.skip(f"the test server's socket {socket} is not on this machine")
    leave_pending_order(billed)
    if where == "socket missing":
        socket = "/nonexistent/mysqld.sock"
    # no host (localhost) and a port nothing listens on: only the socket leads to the server
    host = "" if where == "extras honoured" else "localhost"
    airflow_connections(
        "user_prop_db",
        mysql_connection(billed, host=host, port=1, extra=json.dumps({"unix_socket": socket})),
    )
    event = first_event(trigger(wait_timeout=5, fail_after=0))
    if where == "extras honoured":
        assert event == {"status": "work", "pending_orders": True}
        BillingMySqlHook(mysql_conn_id="user_prop_db").get_conn().close()
    else:
        assert "database (user_prop_db): ConnectionError" in event["check_failed"], event
        assert "/nonexistent/mysqld.sock" in event["check_failed"], event
        with pytest.raises(ConnectionError, match="/nonexistent/mysqld.sock"):
            BillingMySqlHook(mysql_conn_id="user_prop_db").get_conn()


def test_sensor_defers_when_there_is_no_work_and_skips_on_timeout(
    billed, airflow_variables
) -> None:
    airflow_variables("call400_sensor_timeout", 42)
    sensor = Call400WorkSensor(task_id="wait_for_work", poll_interval=1)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    waiting = deferred.value.trigger
    assert isinstance(waiting, Call400WorkTrigger) and not waiting.end_task
    assert before + 42 <= waiting.deadline <= time.time() + 42
    assert deferred.value.method_name == "execute_complete"
    with pytest.raises(AirflowSkipException):
        sensor.execute_complete({}, {"status": "timeout", "queue": billed.queue})
    event = {"status": "work", "messages": 3}
    assert sensor.execute_complete({}, event) == {"messages": 3}


def test_sensor_returns_at_once_when_there_is_work(call400) -> None:
    call400.publish([call_body("s1")])
    sensor = Call400WorkSensor(task_id="wait_for_work")
    poked = sensor.poke({})
    assert (poked.is_done, poked.xcom_value) == (True, {"messages": 1})
    assert sensor.execute({}) == {"messages": 1}
    assert call400.ready() == 1
