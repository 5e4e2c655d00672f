"""MySQL access for ``anjuke_db`` and ``user_prop_db`` through the mysql provider's hook."""

from __future__ import annotations

from typing import Any

from airflow.providers.mysql.hooks.mysql import MySqlHook

from sublessor_billing.config import ANJUKE_DB, USER_PROP_DB
from sublessor_billing.db.connect import force_utf8mb4
from sublessor_billing.db.migrate import ensure_schema

_migrated: set[tuple[str, str, str]] = set()


def mysql_address(conn_id: str) -> str:
    """``host:port/schema`` of a MySQL connection, for error messages (never its credentials)."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return "<connection not defined>"
    return f"{conn.host}:{conn.port or 3306}/{conn.schema or ''}"


class UnsupportedMySqlClient(ValueError):
    """The Airflow connection names a driver other than mysqlclient."""


class BillingMySqlHook(MySqlHook):
    """MySqlHook on mysqlclient, always utf8mb4, whose errors name the Airflow connection.

    The connection's ``charset`` extra (or its absence: the client library's
    default) is overridden: every session is utf8mb4, so non-ASCII values are
    stored as sent. Our SQL relies on mysqlclient (``string_literal``,
    ``warning_count``): a ``client`` extra naming another driver is refused.
    """

    hook_name = "MySQL (sublessor billing)"

    def get_conn(self) -> Any:
        conn_id = getattr(self, self.conn_name_attr)
        try:
            self.connection = self.connection or self.get_connection(conn_id)
            client = self.connection.extra_dejson.get("client", "mysqlclient")
            if client != "mysqlclient":
                raise UnsupportedMySqlClient(
                    f"MySQL connection {conn_id!r} asks for client {client!r}; this project "
                    "needs mysqlclient: remove the 'client' extra."
                )
            conn = super().get_conn()
        except UnsupportedMySqlClient:
            raise
        except Exception as exc:
            raise ConnectionError(
                f"Cannot open MySQL connection {conn_id!r} at {mysql_address(conn_id)}: {exc}. "
                f"Check Admin -> Connections -> {conn_id} and that the server is reachable."
            ) from exc
        force_utf8mb4(conn)
        conn.autocommit(False)
        return conn


def user_prop_db(conn_id: str = USER_PROP_DB, *, migrate: bool = True) -> Any:
    """Open ``user_prop_db`` with the project's schema applied (once per process).

    ``migrate=False`` (the Billing page, read-only requests): open it as it is;
    the caller checks the schema version itself.
    """
    hook = BillingMySqlHook(mysql_conn_id=conn_id)
    conn = hook.get_conn()
    if not migrate:
        return conn
    airflow_conn = hook.get_connection(conn_id)
    key = (conn_id, str(airflow_conn.host), str(airflow_conn.schema))
    if key not in _migrated:
        ensure_schema(conn)
        _migrated.add(key)
    return conn


def anjuke_db(conn_id: str = ANJUKE_DB) -> Any:
    """Open the read-only broker source database."""
    return BillingMySqlHook(mysql_conn_id=conn_id).get_conn()
