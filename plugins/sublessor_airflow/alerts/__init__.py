"""Alerts of the billing pipeline: the webhook notifier and the periodic checks."""
