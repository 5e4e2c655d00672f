"""Fixtures of the broker phone sync tests: the source and target databases, the source clock.

The broker system stamps ``updated_datetime`` with its server's clock, in
Asia/Shanghai, and the sync reads that clock (``SELECT NOW()``) as Asia/Shanghai
time. The test server runs in whatever zone the machine has (often UTC), so every
session on the source, the tests' and the task's, is set to UTC+8 (China has kept
it without daylight saving since 1991).
"""

from __future__ import annotations

import pytest
from broker_sync_db import brokers, put_brokers, target_phones

from sublessor_billing.broker_sync import full_resync
from sublessor_billing.db.connect import connect

SHANGHAI_SESSION = "SET time_zone = '+08:00'"


@pytest.fixture(autouse=True)
def source_sessions_in_shanghai_time(monkeypatch):
    """The task opens anjuke_db through the Airflow hook: its session gets the zone too."""
    from sublessor_airflow.hooks import mysql

    real_open = mysql.anjuke_db

    def anjuke_db(*args, **kwargs):
        conn = real_open(*args, **kwargs)
        with conn.cursor() as cur:
            cur.execute(SHANGHAI_SESSION)
        return conn

    monkeypatch.setattr(mysql, "anjuke_db", anjuke_db)


@pytest.fixture
def source(anjuke_target):
    conn = connect(anjuke_target, init_command=SHANGHAI_SESSION)
    yield conn
    conn.close()


@pytest.fixture
def target(user_prop_conn):
    return user_prop_conn


@pytest.fixture
def ten_brokers(source, target):
    """broker_phone synced from ten brokers (ids 1..10), ten numbers."""
    put_brokers(source, brokers(range(1, 11)))
    full_resync(source, target)
    assert len(target_phones(target)) == 10
