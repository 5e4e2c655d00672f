"""What every operator working in ``user_prop_db`` shares: the connection's one parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from sublessor_billing.config import USER_PROP_DB


class UserPropDbOperator(BaseOperator):
    """Base: an operator working in ``user_prop_db``.

    :param user_prop_conn_id: the MySQL connection of ``user_prop_db`` (templated), the
        same parameter name as every operator of the project that works in it.
    """

    template_fields: Sequence[str] = ("user_prop_conn_id",)

    def __init__(self, *, user_prop_conn_id: str = USER_PROP_DB, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_prop_conn_id = user_prop_conn_id

    def connect(self) -> Any:
        """Open ``user_prop_db`` with the schema migrated (imported late: no I/O at parse time)."""
        from sublessor_airflow.hooks.mysql import user_prop_db

        return user_prop_db(self.user_prop_conn_id)
