-- Offline decisions are kept current per sublessor with every batch of payment
-- answers (payments/decisions.py): its pending decisions are read by
-- (sublessor_id, status). Replaces idx_sublessor, a prefix of it.
ALTER TABLE sublessor_offline_event
  MODIFY status VARCHAR(16) NOT NULL DEFAULT 'pending' COMMENT 'pending | done | superseded',
  MODIFY attempts INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'requests handed to the listing service, counted before each is sent',
  ADD KEY idx_sublessor_status (sublessor_id, status, trigger_order_id),
  DROP KEY idx_sublessor;

-- A valid call without an order must be found whatever the database clock did
-- (payments/sweep.py): order_allocated is set to 1 in the transaction that
-- writes the call's payment row, so (filter_rule 1, order_allocated 0) is a small
-- range of idx_unallocated (the calls just judged, and any that were missed).
ALTER TABLE sublessor_call_log_201409
  ADD COLUMN order_allocated TINYINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT '1 once the call has its row in the payment log (set in that transaction)';
ALTER TABLE sublessor_call_log_201409
  ADD KEY idx_unallocated (filter_rule, order_allocated);

-- Calls allocated before this migration (rerunnable: only rows still at 0).
UPDATE sublessor_call_log_201409 c
  JOIN sublessor_call_payment_log_201409 p ON p.call_id = c.call_id
SET c.order_allocated = 1
WHERE c.filter_rule = 1 AND c.order_allocated = 0;
