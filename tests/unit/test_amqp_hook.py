"""Reading ``call400_amqp`` (TLS, vhost, extras) and the trigger's serialized form."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from sublessor_airflow.hooks.amqp import AmqpSettings, Call400AmqpHook
from sublessor_airflow.triggers.call400_work import Call400WorkTrigger

EXTRA = {"exchange": "ex400", "exchange_type": "topic", "routing_key": "rk.400", "queue": "q400"}


def conn(**fields) -> Connection:
    values = {"conn_id": "call400_amqp", "conn_type": "amqp", "host": "mq.example", "login": "u"}
    values.update(fields)
    values.setdefault("extra", json.dumps(EXTRA))
    return Connection(**values)


def test_hook_declares_its_connection() -> None:
    assert Call400AmqpHook.default_conn_name == "call400_amqp"
    assert Call400AmqpHook.conn_type == "amqp"
    assert Call400AmqpHook().amqp_conn_id == "call400_amqp"


def test_settings_from_connection() -> None:
    s = AmqpSettings.from_connection(conn(port=5673, schema="billing", password="s3cret-pw"))
    assert (s.host, s.port, s.vhost, s.exchange, s.exchange_type, s.routing_key, s.queue) == (
        "mq.example",
        5673,
        "billing",
        "ex400",
        "topic",
        "rk.400",
        "q400",
    )
    assert not s.ssl
    assert "s3cret-pw" not in repr(s)
    params = s.parameters()
    assert params.virtual_host == "billing" and params.heartbeat == 60
    assert params.blocked_connection_timeout and params.socket_timeout
    assert "s3cret-pw" not in repr(params)


def test_defaults_vhost_port_and_exchange_type() -> None:
    extra = {k: v for k, v in EXTRA.items() if k != "exchange_type"}
    s = AmqpSettings.from_connection(conn(extra=json.dumps(extra)))
    assert (s.port, s.vhost, s.exchange_type) == (5672, "/", "direct")


@pytest.mark.parametrize(
    ("port", "extra_ssl", "expected"),
    [(5671, None, True), (5672, True, True), (5672, "false", False)],
)
def test_tls_by_port_or_extra(port, extra_ssl, expected) -> None:
    extra = dict(EXTRA, **({} if extra_ssl is None else {"ssl": extra_ssl}))
    s = AmqpSettings.from_connection(conn(port=port, extra=json.dumps(extra)))
    assert s.ssl is expected
    assert (s.parameters().ssl_options is not None) is expected


def test_missing_extras_are_named() -> None:
    with pytest.raises(ValueError, match="call400_amqp.*routing_key, queue"):
        AmqpSettings.from_connection(conn(extra=json.dumps({"exchange": "ex"})))


@pytest.mark.parametrize("end_task", [False, True])
def test_trigger_serializes_to_what_rebuilds_it(end_task) -> None:
    trigger = Call400WorkTrigger(
        amqp_conn_id="call400_amqp", user_prop_conn_id="user_prop_db", started_at=1234.5,
        wait_timeout="60", poll_interval=2, end_task=end_task,
    )  # fmt: skip
    classpath, kwargs = trigger.serialize()
    assert classpath == "sublessor_airflow.triggers.call400_work.Call400WorkTrigger"
    json.dumps(kwargs)
    again = Call400WorkTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert again.deadline == 1294.5


def test_the_deadline_reads_the_variable_as_the_tasks_do() -> None:
    def deadline(wait_timeout):
        return Call400WorkTrigger(
            amqp_conn_id="a", user_prop_conn_id="u", started_at="100.0", wait_timeout=wait_timeout
        ).deadline

    assert deadline("") == deadline(None) == 400.0  # not set: the contract's default, 300 s
    assert deadline(" 20 ") == 120.0
    with pytest.raises(ValueError, match="call400_sensor_timeout"):
        deadline("five minutes")


def test_the_sensor_starts_in_the_triggerer_with_templated_deadline() -> None:
    from sublessor_airflow.sensors.call400_work import Call400WorkSensor

    sensor = Call400WorkSensor(task_id="wait_for_work")
    args = sensor.start_trigger_args
    assert sensor.start_from_trigger and args.next_method == "execute_complete"
    assert args.trigger_cls == "sublessor_airflow.triggers.call400_work.Call400WorkTrigger"
    assert args.trigger_kwargs["end_task"] is True
    # rendered by the triggerer: the run's start and the Variable, both template fields
    for name in ("started_at", "wait_timeout"):
        assert "{{" in args.trigger_kwargs[name] and name in sensor.template_fields
    Call400WorkTrigger(**args.trigger_kwargs)  # the kwargs build the trigger
