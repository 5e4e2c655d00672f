"""The Billing page's database: ``user_prop_db`` opened per request, never migrated by it.

Read-only requests must not run schema migrations (they lock tables): the page
opens the connection as it is and answers 503 "migrations pending" while the
database lacks a migration the code has; the DAGs apply them (``ensure_schema``).
A 503 names neither the database host nor its user (viewers see it); the
api-server log has the full error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, status

from sublessor_billing.db.migrate import applied_versions, available_migrations

log = logging.getLogger(__name__)


def open_user_prop() -> Any:
    """The database, opened without migrating it: 503 while migrations are pending."""
    # Imported here: every Airflow process imports the plugin, some while loading the hook.
    from sublessor_airflow.hooks.mysql import user_prop_db

    try:
        conn = user_prop_db(migrate=False)
    except ConnectionError as exc:  # names the connection, its host and the server's answer
        log.error("Billing page: %s", exc)
        undefined = "isn't defined" in str(exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Cannot open the Airflow connection user_prop_db: "
            + (
                "`user_prop_db` isn't defined: define it in Admin -> Connections -> user_prop_db."
                if undefined
                else "the database refused it or is unreachable; the api-server log says why."
            ),
        ) from None
    try:
        missing = schema_behind(conn)
    except Exception:
        conn.close()
        raise
    if missing:
        conn.close()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"migrations pending: the database lacks {len(missing)} migration(s) (up to"
            f" {max(missing)}); the page never migrates. They are applied by the next"
            " call400_billing task run (or db/migrate.py); reload afterwards.",
        )
    return conn


def schema_behind(conn: Any) -> list[int]:
    """The migration versions the code has and the database has not applied."""
    applied = applied_versions(conn)
    conn.rollback()
    return sorted(m.version for m in available_migrations() if m.version not in applied)


@contextmanager
def user_prop() -> Iterator[Any]:
    conn = open_user_prop()
    try:
        yield conn
    finally:
        conn.close()
