"""Operator exporting new and edited ``sublessor_contract`` rows to K3 Cloud."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sublessor_airflow.hooks.k3_cloud import K3CloudHook
from sublessor_airflow.operators.base import UserPropDbOperator
from sublessor_airflow.variables import get_text
from sublessor_billing.config import K3_CLOUD
from sublessor_billing.k3.export import DEFAULT_CREATE_QUIET_PERIOD_S, export_contracts
from sublessor_billing.k3.mapping import FIELD_MAP_VARIABLE, parse_field_map

if TYPE_CHECKING:
    from airflow.sdk import Context


class K3ContractExportOperator(UserPropDbOperator):
    """Export contracts that are new or edited since their last export; never create one twice.

    Returns the counts ``created/updated/unchanged/refused/waiting/conflict`` (also
    in XCom ``counts``); when contracts were refused or are held in ``conflict`` the
    task fails after exporting all the others, naming them.

    :param k3_conn_id: the K3 Cloud connection (templated).
    :param user_prop_conn_id: the MySQL connection of ``user_prop_db`` (templated).
    :param field_map: ``{K3 field: "column|transform"}``, dict or JSON (templated);
        overrides the Variable ``k3_contract_field_map``, which overrides the built-in
        mapping (``sublessor_billing.k3.mapping.DEFAULT_FIELD_MAP``).
    :param page_size: contracts read, and looked up in K3, at a time.
    :param request_timeout: seconds per K3 request.
    :param create_quiet_period: a create sent this recently whose bill K3 does not
        show (yet) is not sent again; it is counted ``waiting`` and a later run looks
        it up.
    """

    template_fields: Sequence[str] = (
        "k3_conn_id",
        *UserPropDbOperator.template_fields,
        "field_map",
    )
    template_fields_renderers = {"field_map": "json"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        k3_conn_id: str = K3_CLOUD,
        field_map: Mapping[str, str] | str | None = None,
        page_size: int = 200,
        request_timeout: float = 30.0,
        create_quiet_period: timedelta = timedelta(seconds=DEFAULT_CREATE_QUIET_PERIOD_S),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.k3_conn_id = k3_conn_id
        self.field_map = field_map
        self.page_size = page_size
        self.request_timeout = request_timeout
        self.create_quiet_period = create_quiet_period

    @cached_property
    def hook(self) -> K3CloudHook:
        return K3CloudHook(self.k3_conn_id, timeout=self.request_timeout)

    def execute(self, context: Context) -> dict[str, int]:
        raw_map = self.field_map
        if raw_map is None:
            raw_map = get_text(FIELD_MAP_VARIABLE)
        try:
            field_map = parse_field_map(raw_map)  # a bad mapping fails before anything is sent
        except ValueError as exc:  # a retry would read the same mapping
            raise AirflowFailException(
                f"{exc}. Fix Admin -> Variables -> {FIELD_MAP_VARIABLE} (docs/k3_contract_export.md)"
                " or delete it to use the built-in mapping."
            ) from exc
        conn = self.connect()
        try:
            report = export_contracts(
                conn,
                self.hook,
                field_map,
                page_size=self.page_size,
                create_quiet_period_s=self.create_quiet_period.total_seconds(),
            )
        finally:
            conn.close()
            self.hook.close()
        counts = report.counts()
        context["ti"].xcom_push(key="counts", value=counts)
        failure = report.failure_message()
        if failure:
            raise AirflowException(failure)
        return counts
