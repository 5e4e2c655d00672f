"""Every MySQL connection speaks utf8mb4, whatever the Airflow connection or the caller asks for."""

from __future__ import annotations

import json

import pytest
from support.calls import call_body

from sublessor_billing.db.connect import connect

pytestmark = pytest.mark.integration

EXTRAS = [None, {"charset": "latin1"}, {"charset": "utf8"}, {"charset": "ascii"}]
EXT = "分机二🙂"


def session_charsets(conn) -> tuple:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT @@character_set_client, @@character_set_connection, @@character_set_results"
        )
        return tuple(cur.fetchone())


def define_mysql(airflow_connections, conn_id: str, target, extra: dict | None) -> None:
    value = target.airflow_connection()
    if extra is not None:
        value["extra"] = json.dumps(extra)
    airflow_connections(conn_id, value)


@pytest.mark.parametrize("extra", EXTRAS)
def test_hook_connections_are_utf8mb4_whatever_the_extra_says(
    user_prop_target, airflow_connections, extra
) -> None:
    from sublessor_airflow.hooks.mysql import anjuke_db, user_prop_db

    define_mysql(airflow_connections, "user_prop_db", user_prop_target, extra)
    define_mysql(airflow_connections, "anjuke_db", user_prop_target, extra)
    for open_db in (user_prop_db, anjuke_db):
        conn = open_db()
        try:
            assert session_charsets(conn) == ("utf8mb4",) * 3, open_db.__name__
        finally:
            conn.close()


@pytest.mark.parametrize("charset", [None, "latin1", "utf8"])
def test_plain_connections_are_utf8mb4_whatever_the_caller_asks(user_prop_target, charset) -> None:
    conn = connect(user_prop_target, **({} if charset is None else {"charset": charset}))
    try:
        assert session_charsets(conn) == ("utf8mb4",) * 3
    finally:
        conn.close()


def test_a_client_other_than_mysqlclient_is_refused_by_name(
    user_prop_target, airflow_connections
) -> None:
    from sublessor_airflow.hooks.mysql import user_prop_db

    define_mysql(airflow_connections, "user_prop_db", user_prop_target, {"client": "pymysql"})
    with pytest.raises(ValueError, match="user_prop_db.*pymysql.*mysqlclient"):
        user_prop_db()


@pytest.mark.parametrize("extra", EXTRAS)
def test_non_ascii_values_round_trip_through_intake_unchanged(
    call400, airflow_connections, extra
) -> None:
    """Intake through the Airflow hook stores what was sent, in the log and in the quarantine."""
    from sublessor_airflow.operators.intake import Call400IntakeOperator

    define_mysql(airflow_connections, "user_prop_db", call400.target, extra)
    invalid = json.dumps({"call_id": "坏-🙂", "ext": EXT}).encode()
    call400.publish(
        [
            call_body("c-分机-🙂", ext=EXT, called="400-８１２３", caller="+86 138 0013 8000 转"),
            invalid,
        ]
    )
    result = Call400IntakeOperator(task_id="intake").execute({})
    assert result == {"received": 2, "logged": 1, "duplicates": 0, "quarantined": 1}
    assert call400.query("SELECT call_id, ext, called, caller FROM sublessor_call_log_201409") == [
        ("c-分机-🙂", EXT, "400-８１２３", "+86 138 0013 8000 转")
    ]
    rows = call400.query("SELECT call_id, raw_body FROM call400_quarantine")
    assert [(r[0], bytes(r[1])) for r in rows] == [("坏-🙂", invalid)]
