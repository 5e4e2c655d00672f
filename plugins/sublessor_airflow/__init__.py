"""Airflow glue of the sublessor billing pipeline: hooks, operators, sensors, triggers."""
