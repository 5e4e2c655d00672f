"""MariaDB for the tests: the server, unique names, a spy on executed statements.

The server is the machine's MariaDB (``TEST_MYSQL_*`` to point elsewhere). Every
database and queue a test creates has a name from ``unique_name`` and is dropped
afterwards. An Airflow connection for a database is ``MySqlTarget.airflow_connection()``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sublessor_billing.demo.connections import mysql_server

MYSQL = mysql_server("TEST")
RUN_ID = secrets.token_hex(3)  # one per test run: names show which run left them


def unique_name(prefix: str) -> str:
    """A database / exchange / queue name no other test (or test run) uses."""
    return f"t_{prefix}_{RUN_ID}_{secrets.token_hex(3)}"


@contextmanager
def statements(pattern: str) -> Iterator[list[str]]:
    """Collect (as text) every statement executed while inside whose text matches ``pattern``."""
    import MySQLdb.cursors

    seen: list[str] = []
    wanted = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    real = MySQLdb.cursors.BaseCursor.execute

    def spy(cur, query, args=None):
        text = query.decode(errors="replace") if isinstance(query, bytes) else str(query)
        if wanted.search(text):
            seen.append(text)
        return real(cur, query, args)

    patch = pytest.MonkeyPatch()
    patch.setattr(MySQLdb.cursors.BaseCursor, "execute", spy)
    try:
        yield seen
    finally:
        patch.undo()


def other_sessions_running(conn, statement_like: str) -> int:
    """How many other sessions of ``conn``'s database run a statement ``LIKE statement_like``
    now (blocked in a lock wait, typically): the state a test waits for instead of sleeping."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
            " AND id <> CONNECTION_ID() AND info LIKE %s",
            (statement_like,),
        )
        (count,) = cur.fetchone()
    return int(count)
