"""MySQL access for ``anjuke_db`` and ``user_prop_db`` through the mysql provider's hook.

Every connection the project opens on an Airflow MySQL connection goes through
``open_mysql``: the hook's ``get_conn`` and the triggerer's look for work alike,
so both honour the same fields and extras (``ssl``, ``ssl_mode``,
``unix_socket``, ``iam``...), read by the provider in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.mysql.hooks.mysql import MySqlHook

from sublessor_billing.config import ANJUKE_DB, USER_PROP_DB
from sublessor_billing.db.connect import force_utf8mb4
from sublessor_billing.db.migrate import ensure_schema

if TYPE_CHECKING:
    from airflow.sdk import Connection

_migrated: set[tuple[str, str, str]] = set()


def mysql_address(conn_id: str) -> str:
    """``host:port/schema`` of a MySQL connection, for error messages (never its credentials)."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return "<connection not defined>"
    return connection_address(conn)


def connection_address(connection: Connection) -> str:
    """Where a MySQL connection points, ``host:port/schema`` (and its socket), never its login."""
    socket = (connection.extra_dejson or {}).get("unix_socket")
    where = f"{connection.host or 'localhost'}:{connection.port or 3306}/{connection.schema or ''}"
    return f"{where} (socket {socket})" if socket else where


class UnsupportedMySqlClient(ValueError):
    """The Airflow connection names a driver other than mysqlclient."""


def connect_arguments(connection: Connection, hook: MySqlHook | None = None) -> dict[str, Any]:
    """mysqlclient's arguments for an Airflow MySQL connection, extras included, as the mysql
    provider's hook builds them (``hook``: its schema, local_infile, init_command)."""
    client = (connection.extra_dejson or {}).get("client", "mysqlclient")
    if client != "mysqlclient":
        raise UnsupportedMySqlClient(
            f"MySQL connection {connection.conn_id!r} asks for client {client!r}; this project "
            "needs mysqlclient: remove the 'client' extra."
        )
    hook = hook or MySqlHook(mysql_conn_id=connection.conn_id)
    return hook._get_conn_config_mysql_client(connection)


def open_mysql(connection: Connection, *, hook: MySqlHook | None = None, **options: Any) -> Any:
    """Open mysqlclient on an Airflow MySQL connection: utf8mb4, autocommit off.

    ``options`` (timeouts) are added to the connection's own arguments
    (``connect_arguments``). Blocking: a trigger runs it in a thread. A failure
    is a ``ConnectionError`` naming the connection and where it points.
    """
    import MySQLdb

    try:
        conn = MySQLdb.connect(**{**connect_arguments(connection, hook), **options})
    except UnsupportedMySqlClient:
        raise
    except Exception as exc:
        raise ConnectionError(
            f"Cannot open MySQL connection {connection.conn_id!r} at "
            f"{connection_address(connection)}: {exc}. Check Admin -> Connections -> "
            f"{connection.conn_id} and that the server is reachable."
        ) from exc
    force_utf8mb4(conn)
    conn.autocommit(False)
    return conn


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
        except Exception as exc:
            raise ConnectionError(
                f"Cannot read MySQL connection {conn_id!r}: {exc}. "
                f"Check Admin -> Connections -> {conn_id}."
            ) from exc
        return open_mysql(self.connection, hook=self)


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
