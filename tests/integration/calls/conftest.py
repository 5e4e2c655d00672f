"""Fixtures of the 400 call integration tests: a migrated database, a bound queue, connections."""

from __future__ import annotations

import pytest
from support.calls import Call400Env

from sublessor_airflow.hooks.amqp import Call400AmqpHook


@pytest.fixture
def call400(user_prop_target, amqp_names, airflow_connections) -> Call400Env:
    env = Call400Env(user_prop_target, amqp_names)
    airflow_connections("call400_amqp", env.amqp_connection())
    airflow_connections("user_prop_db", user_prop_target.airflow_connection())
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
