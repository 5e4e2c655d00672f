"""Fixtures of the broker phone sync tests: open connections to fresh source and target databases."""

from __future__ import annotations

import pytest

from sublessor_billing.db.connect import connect


@pytest.fixture
def source(anjuke_target):
    conn = connect(anjuke_target)
    yield conn
    conn.close()


@pytest.fixture
def target(user_prop_target):
    conn = connect(user_prop_target)
    yield conn
    conn.close()
