"""Plain MySQL connections for code that runs outside Airflow (demo, tests, benchmarks).

Every connection the project opens speaks utf8mb4 (client, connection and
results character sets), here and through the Airflow hook (``force_utf8mb4``),
whatever the client library's default or a caller asks: intake writes UTF-8
bytes, and ``ext``/``called`` may hold any Unicode, emoji included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MySqlTarget:
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str | None = None

    def with_database(self, database: str) -> MySqlTarget:
        return MySqlTarget(self.host, self.port, self.user, self.password, database)

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database or ''}"

    def airflow_connection(self) -> dict[str, Any]:
        """This target as an Airflow connection (the JSON of an ``AIRFLOW_CONN_<ID>`` variable)."""
        return {
            "conn_type": "mysql",
            "host": self.host,
            "port": self.port,
            "login": self.user,
            "password": self.password,
            "schema": self.database,
        }


CHARSET = "utf8mb4"


def connect(target: MySqlTarget, **options: Any) -> Any:
    """Open a mysqlclient connection (autocommit off; utf8mb4, which ``options`` cannot change)."""
    import MySQLdb

    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "passwd": target.password,
        "autocommit": False,
    }
    if target.database:
        kwargs["db"] = target.database
    kwargs.update(options)
    kwargs.update(charset=CHARSET, use_unicode=True)
    kwargs.pop("collation", None)
    try:
        return MySQLdb.connect(**kwargs)
    except MySQLdb.OperationalError as exc:
        raise ConnectionError(
            f"Cannot connect to MySQL at {target.host}:{target.port} as {target.user!r} "
            f"(database {target.database!r}): {exc}. Is the server up and the database created?"
        ) from exc


def force_utf8mb4(conn: Any) -> None:
    """Make a mysqlclient connection opened elsewhere speak utf8mb4 (``SET NAMES`` and its codec)."""
    conn.set_character_set(CHARSET)
