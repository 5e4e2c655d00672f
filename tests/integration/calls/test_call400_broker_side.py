"""The RabbitMQ hook, the trigger and the sensor against the real broker."""

from __future__ import annotations

import asyncio
import json
import time

import pika
import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred
from call400_fixtures import AMQP_URL, call_body

from sublessor_airflow.hooks.amqp import Call400AmqpHook
from sublessor_airflow.sensors.call400_queue import Call400QueueSensor
from sublessor_airflow.triggers.call400_queue import Call400QueueTrigger

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


def test_trigger_times_out_on_an_empty_queue(call400) -> None:
    event = first_event(
        Call400QueueTrigger(
            amqp_conn_id="call400_amqp", deadline=time.time() + 1, poll_interval=0.2
        )
    )
    assert event == {"status": "timeout", "queue": call400.queue}


def test_trigger_fires_on_messages_without_consuming_them(call400) -> None:
    call400.publish([call_body("t1"), call_body("t2")])
    event = first_event(Call400QueueTrigger(amqp_conn_id="call400_amqp", deadline=time.time() + 30))
    assert event == {"status": "messages", "count": 2}
    first_event(Call400QueueTrigger(amqp_conn_id="call400_amqp", deadline=time.time() + 30))
    assert call400.ready() == 2


def test_trigger_reports_a_deleted_queue(call400) -> None:
    broker = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    broker.channel().queue_delete(call400.queue)
    broker.close()
    event = first_event(Call400QueueTrigger(amqp_conn_id="call400_amqp", deadline=time.time() + 5))
    assert event["status"] == "error" and call400.queue in event["message"]


def test_sensor_defers_on_empty_queue_and_skips_on_timeout(call400, airflow_variables) -> None:
    airflow_variables("call400_sensor_timeout", 42)
    sensor = Call400QueueSensor(task_id="wait_for_calls", poll_interval=1)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, Call400QueueTrigger)
    assert before + 42 <= trigger.deadline <= time.time() + 42
    assert deferred.value.method_name == "execute_complete"
    with pytest.raises(AirflowSkipException):
        sensor.execute_complete({}, {"status": "timeout", "queue": call400.queue})
    assert sensor.execute_complete({}, {"status": "messages", "count": 3}) == 3


def test_sensor_returns_at_once_when_messages_wait(call400) -> None:
    call400.publish([call_body("s1")])
    assert Call400QueueSensor(task_id="wait_for_calls").execute({}) == 1
    assert call400.ready() == 1
