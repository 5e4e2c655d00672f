"""Fixtures of the CeleryExecutor tests: the billing workload and the cluster class."""

from __future__ import annotations

import pytest
from celery_billing_checks import LATENCY_MS, SUBLESSORS

from sublessor_billing.demo.billing_workload import BillingWorkload


@pytest.fixture
def workload():
    made = BillingWorkload.create(sublessors=SUBLESSORS, latency_ms=LATENCY_MS)
    yield made
    made.drop()


@pytest.fixture
def cluster_class():
    try:
        import airflow.providers.celery  # noqa: F401

        from sublessor_billing.demo.celery_cluster import CeleryCluster
    except ImportError as exc:  # pragma: no cover - an incomplete install
        pytest.fail(f"the Celery extra is missing ({exc}): run `make install-celery`")
    return CeleryCluster
