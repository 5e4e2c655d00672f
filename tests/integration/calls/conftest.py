"""Fixtures of the 400 call integration tests: a migrated database, a bound queue, connections."""

from __future__ import annotations

import json

import pytest
from call400_fixtures import Call400Env

from sublessor_airflow.hooks.amqp import Call400AmqpHook


@pytest.fixture
def call400(user_prop_target, amqp_names, airflow_connections) -> Call400Env:
    env = Call400Env(user_prop_target, amqp_names)
    airflow_connections("call400_amqp", env.amqp_connection())
    airflow_connections(
        "user_prop_db",
        json.dumps(
            {
                "conn_type": "mysql",
                "host": user_prop_target.host,
                "port": user_prop_target.port,
                "login": user_prop_target.user,
                "password": user_prop_target.password,
                "schema": user_prop_target.database,
            }
        ),
    )
    hook = Call400AmqpHook()
    try:
        hook.ensure_topology()
    finally:
        hook.close()
    return env


@pytest.fixture
def amqp_hook(call400):
    hook = Call400AmqpHook()
    yield hook
    hook.close()
