"""What the migration files ask of the server, read without one."""

from __future__ import annotations

import re

import pytest

from sublessor_billing.db.migrate import available_migrations


def alter_statements() -> list[tuple[str, str]]:
    return [
        (m.name, statement)
        for m in available_migrations()
        for statement in m.statements()
        if statement.upper().startswith("ALTER TABLE")
    ]


@pytest.mark.parametrize(("migration", "statement"), alter_statements())
def test_no_add_column_names_a_lock(migration: str, statement: str) -> None:
    """MySQL 8 adds a column instantly only with LOCK=DEFAULT: an explicit LOCK=NONE makes it
    rebuild the table online instead (hours on a call log of 100M rows). Without a LOCK clause
    every server picks its cheapest way (instant on MariaDB 10.3+ and MySQL 8.0.12+)."""
    if re.search(r"\bADD\s+COLUMN\b", statement, re.IGNORECASE):
        assert not re.search(r"\bLOCK\s*=", statement, re.IGNORECASE), (migration, statement)


def test_the_call_log_index_is_still_built_online() -> None:
    (statement,) = [
        s for name, s in alter_statements() if "idx_unallocated" in s and name.startswith("080")
    ]
    assert re.search(r"\bLOCK\s*=\s*NONE\b", statement), statement
