"""Airflow plugin: the Billing page (navigation entry) and its JSON API under /billing.

The code lives in the ``sublessor_airflow.ui`` package; this file only registers it
(Airflow imports every file at the top of the plugins folder as a module, in every
process that loads plugins: the app itself is imported on its first request).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sublessor_airflow.ui.lazy import LazyAsgiApp


class BillingOpsPlugin(AirflowPlugin):
    name = "billing_ops"
    fastapi_apps = [
        {
            "app": LazyAsgiApp("sublessor_airflow.ui.api:app"),
            "url_prefix": "/billing",
            "name": "Billing operations",
        }
    ]
    # Shown in the navigation; the UI frames the page at /plugin/billing. The href is
    # relative to the UI's base URL, so a [api] base_url with a path keeps working.
    external_views = [
        {
            "name": "Billing",
            "href": "billing/",
            "url_route": "billing",
            "destination": "nav",
            "category": None,
        }
    ]
