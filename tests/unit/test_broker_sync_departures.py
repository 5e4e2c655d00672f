"""The removal guard's temporary tables: a missing privilege says what to grant."""

from __future__ import annotations

import pytest

from sublessor_billing.broker_sync.departures import Departures


class DeniedCursor:
    def execute(self, sql, args=None):
        if sql.startswith("CREATE TEMPORARY TABLE"):
            raise RuntimeError(1044, "Access denied for user 'billing'@'%' to database 'user_prop'")


def test_an_account_without_create_temporary_tables_is_told_what_to_grant() -> None:
    with pytest.raises(PermissionError) as failure:
        Departures(DeniedCursor(), chunk=5000)
    message = str(failure.value)
    assert "CREATE TEMPORARY TABLES" in message and "GRANT" in message
    assert "Access denied" in message
