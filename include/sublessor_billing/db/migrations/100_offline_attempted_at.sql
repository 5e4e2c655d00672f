-- When an offline decision was last handed to the listing service (set with its
-- attempt, before the request goes out). call400_billing's sensor looks for work
-- in user_prop_db (sublessor_billing.leftovers): a decision that failed to be
-- delivered counts again once its last attempt is RETRY_AFTER_S old, so a
-- listing service that keeps refusing is not asked again in a tight loop.
-- Rerunnable: a column already there is error 1060, which migrate.py skips.
ALTER TABLE sublessor_offline_event
  ADD COLUMN attempted_at DATETIME(3) NULL COMMENT 'last hand-over to the listing service';
