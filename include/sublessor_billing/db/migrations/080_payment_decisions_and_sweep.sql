-- Offline decisions are kept current per sublessor with every batch of payment
-- answers (payments/decisions.py): its pending decisions are read by
-- (sublessor_id, status). Replaces idx_sublessor, a prefix of it.
ALTER TABLE sublessor_offline_event
  MODIFY status VARCHAR(16) NOT NULL DEFAULT 'pending' COMMENT 'pending | done | superseded',
  MODIFY attempts INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'requests handed to the listing service, counted before each is sent',
  ADD KEY idx_sublessor_status (sublessor_id, status, trigger_order_id),
  DROP KEY idx_sublessor;
