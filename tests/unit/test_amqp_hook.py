"""Reading ``call400_amqp`` (TLS, vhost, extras) and the trigger's serialized form."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from sublessor_airflow.hooks.amqp import AmqpSettings, Call400AmqpHook
from sublessor_airflow.triggers.call400_queue import Call400QueueTrigger

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


def test_trigger_serializes_to_what_rebuilds_it() -> None:
    trigger = Call400QueueTrigger(amqp_conn_id="call400_amqp", deadline=1234.5, poll_interval=2)
    classpath, kwargs = trigger.serialize()
    assert classpath == "sublessor_airflow.triggers.call400_queue.Call400QueueTrigger"
    json.dumps(kwargs)
    again = Call400QueueTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
