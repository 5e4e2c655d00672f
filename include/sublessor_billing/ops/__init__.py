"""Billing operations: what the Billing page, its API and the alerts read and record (plain SQL)."""
