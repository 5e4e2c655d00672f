"""The RabbitMQ hook, the trigger and the sensor against the real broker and database."""

from __future__ import annotations

import asyncio
import json
import time

import pika
import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred
from call400_fixtures import AMQP_URL, call_body

from sublessor_airflow.hooks.amqp import Call400AmqpHook
from sublessor_airflow.sensors.call400_work import Call400WorkSensor
from sublessor_airflow.triggers.call400_work import Call400WorkTrigger

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
        airflow_connections(
            "call400_amqp",
            {
                "conn_type": "amqp",
                "host": "127.0.0.1",
                "port": 5672,
                "login": "guest",
                "password": "guest",
                "schema": "/",
                "extra": json.dumps(amqp_names),
            },
        )
        hook = Call400AmqpHook()
        hook.ensure_topology()
        hook.ensure_topology()
        channel = broker.channel()
        channel.basic_publish(amqp_names["exchange"], amqp_names["routing_key"], b"{}")
        time.sleep(0.2)
        assert hook.message_count() == 1
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
        {
            "conn_type": "amqp",
            "host": "127.0.0.1",
            "port": port,
            "login": "guest",
            "password": password,
            "schema": "billing-vh",
            "extra": json.dumps(amqp_names),
        },
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


def test_trigger_times_out_when_there_is_no_work(call400) -> None:
    assert first_event(trigger(wait_timeout=1)) == {"status": "timeout", "queue": call400.queue}


def test_trigger_fires_on_messages_without_consuming_them(call400) -> None:
    call400.publish([call_body("t1"), call_body("t2")])
    assert first_event(trigger()) == {"status": "work", "messages": 2}
    first_event(trigger())
    assert call400.ready() == 2


def test_trigger_fires_on_leftovers_in_the_database(call400) -> None:
    """An unjudged call, then a pending order: work although the queue is empty."""
    call400.execute(
        "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
        " start_time, duration) VALUES ('left', 1, '1', '400', 1, '2026-03-01 10:00:00', 60)"
    )
    assert first_event(trigger()) == {"status": "work", "unjudged": True}
    call400.execute(
        "UPDATE sublessor_call_log_201409 SET filter_rule = 2, judged_at = NOW(3)",
        "INSERT INTO sublessor_call_payment_log_201409 (call_id, sublessor_id, amount, subject)"
        " VALUES ('left', 1, 4000, '400 call left')",
    )
    assert first_event(trigger()) == {"status": "work", "pending_orders": True}


def test_trigger_fires_when_the_queue_is_missing_so_that_the_pass_declares_it(call400) -> None:
    broker = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    broker.channel().queue_delete(call400.queue)
    broker.close()
    assert first_event(trigger()) == {"status": "work", "queue_missing": True}


def test_trigger_ends_the_task_itself_when_started_by_the_scheduler(call400) -> None:
    from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent

    call400.publish([call_body("t1")])
    event = asyncio.run(anext(trigger(end_task=True).run()))
    assert isinstance(event, TaskSuccessEvent) and event.xcoms == {"return_value": {"messages": 1}}
    call400.purge()
    event = asyncio.run(anext(trigger(end_task=True, wait_timeout=0).run()))
    assert isinstance(event, TaskSkippedEvent)


def test_trigger_polls_on_through_a_database_outage(call400, airflow_connections) -> None:
    airflow_connections("user_prop_db", {"conn_type": "mysql", "host": "127.0.0.1", "port": 1})
    assert first_event(trigger(wait_timeout=1))["status"] == "timeout"


def test_sensor_defers_when_there_is_no_work_and_skips_on_timeout(
    call400, airflow_variables
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
        sensor.execute_complete({}, {"status": "timeout", "queue": call400.queue})
    event = {"status": "work", "messages": 3}
    assert sensor.execute_complete({}, event) == {"messages": 3}


def test_sensor_returns_at_once_when_there_is_work(call400) -> None:
    call400.publish([call_body("s1")])
    assert Call400WorkSensor(task_id="wait_for_work").execute({}) == {"messages": 1}
    assert call400.ready() == 1
