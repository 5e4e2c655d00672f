"""Operator exporting new and edited ``sublessor_contract`` rows to K3 Cloud."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Variable
from airflow.sdk.exceptions import AirflowException

from sublessor_airflow.hooks.k3_cloud import K3CloudHook
from sublessor_airflow.hooks.mysql import user_prop_db
from sublessor_billing.config import K3_CLOUD, USER_PROP_DB
from sublessor_billing.k3.export import export_contracts
from sublessor_billing.k3.mapping import FIELD_MAP_VARIABLE, parse_field_map

if TYPE_CHECKING:
    from airflow.sdk import Context


class K3ContractExportOperator(BaseOperator):
    """Export contracts that are new or edited since their last export; never create one twice.

    ``field_map`` (``{K3 field: "column|transform"}``, dict or JSON) overrides the
    Variable ``k3_contract_field_map``, which overrides the built-in mapping
    (``sublessor_billing.k3.mapping.DEFAULT_FIELD_MAP``). Returns the counts
    ``created/updated/unchanged/refused``; when K3 refused contracts the task
    fails after exporting all the others, naming them (counts in XCom ``counts``).
    """

    template_fields = ("k3_conn_id", "user_prop_conn_id", "field_map")
    template_fields_renderers = {"field_map": "json"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        k3_conn_id: str = K3_CLOUD,
        user_prop_conn_id: str = USER_PROP_DB,
        field_map: Mapping[str, str] | str | None = None,
        page_size: int = 200,
        request_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.k3_conn_id = k3_conn_id
        self.user_prop_conn_id = user_prop_conn_id
        self.field_map = field_map
        self.page_size = page_size
        self.request_timeout = request_timeout

    @cached_property
    def hook(self) -> K3CloudHook:
        return K3CloudHook(self.k3_conn_id, timeout=self.request_timeout)

    def execute(self, context: Context) -> dict[str, int]:
        raw_map = self.field_map
        if raw_map is None:
            raw_map = Variable.get(FIELD_MAP_VARIABLE, default=None)
        field_map = parse_field_map(raw_map)  # a bad mapping fails before anything is sent
        conn = user_prop_db(self.user_prop_conn_id)
        try:
            report = export_contracts(conn, self.hook, field_map, page_size=self.page_size)
        finally:
            conn.close()
            self.hook.close()
        counts = report.counts()
        context["ti"].xcom_push(key="counts", value=counts)
        failure = report.failure_message()
        if failure:
            raise AirflowException(failure)
        return counts
