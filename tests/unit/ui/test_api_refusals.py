"""How the API answers a single quarantine action the database refused."""

from __future__ import annotations

import MySQLdb
import pytest
from fastapi import HTTPException

from sublessor_airflow.ui.api import _refusals


def test_a_body_the_call_log_refuses_is_422_still_invalid_not_500() -> None:
    with pytest.raises(HTTPException) as answer, _refusals():
        raise MySQLdb.DataError(1406, "Data too long for column 'caller' at row 1")
    assert answer.value.status_code == 422
    assert answer.value.detail.startswith("the call log refused it:")


def test_other_errors_are_not_hidden() -> None:
    with pytest.raises(MySQLdb.OperationalError), _refusals():
        raise MySQLdb.OperationalError(1205, "Lock wait timeout exceeded")
