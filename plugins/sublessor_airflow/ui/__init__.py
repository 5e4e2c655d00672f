"""The Billing page of the Airflow UI: a FastAPI app (page and JSON API) mounted under /billing."""
