"""Domain logic of the sublessor pay-per-call billing pipeline (no Airflow imports)."""
