-- Order allocation reads only calls judged valid since the last allocation
-- (payments/store.py, high-water in job_cursor 'payment_allocation'): a range on
-- (filter_rule, judged_at) instead of a scan of the whole call history.
ALTER TABLE sublessor_call_log_201409 ADD INDEX idx_valid_judged (filter_rule, judged_at);
