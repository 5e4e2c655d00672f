"""The Billing page opens user_prop_db without migrating it: 503 while migrations are pending."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from sublessor_airflow.ui.database import open_user_prop
from sublessor_billing.db.migrate import latest_version

pytestmark = pytest.mark.integration


def versions(conn) -> set[int]:
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_version")
        found = {int(v) for (v,) in cur.fetchall()}
    conn.rollback()
    return found


def test_a_read_never_migrates_and_says_migrations_pending(
    user_prop_conn, user_prop_target, airflow_connections
) -> None:
    airflow_connections("user_prop_db", user_prop_target.airflow_connection())
    latest = latest_version()
    with user_prop_conn.cursor() as cur:
        cur.execute("DELETE FROM schema_version WHERE version = %s", (latest,))
    user_prop_conn.commit()

    with pytest.raises(HTTPException) as refused:
        open_user_prop()
    assert refused.value.status_code == 503
    assert refused.value.detail.startswith("migrations pending")
    assert user_prop_target.host not in refused.value.detail
    assert user_prop_target.user not in refused.value.detail
    assert latest not in versions(user_prop_conn)  # the request did not migrate

    with user_prop_conn.cursor() as cur:
        cur.execute("INSERT INTO schema_version (version, name) VALUES (%s, 'x')", (latest,))
    user_prop_conn.commit()
    conn = open_user_prop()
    conn.close()
