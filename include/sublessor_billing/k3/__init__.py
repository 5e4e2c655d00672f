"""K3 Cloud contract export: field mapping, export planning and export-state SQL (no Airflow)."""
