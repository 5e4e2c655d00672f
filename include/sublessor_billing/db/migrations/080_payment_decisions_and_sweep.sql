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
--
-- DDL only: this migration never touches a call row (an UPDATE of the whole
-- history here would lock the call log while every task waits). The calls that
-- already have an order are flagged by the application, in committed chunks of
-- 10,000 ids that resume where they stopped (payments/flags.py, docs/payments.md
-- "Flagging the history").
--
-- Both ALTERs say LOCK=NONE: reads and writes of the call log go on while they
-- run, and a server that could not do that refuses at once instead of locking.
-- The column is added last with a constant default, which MariaDB 10.3+ and
-- MySQL 8.0.12+ do instantly (metadata only; MariaDB 10.11 checked); MySQL 5.7
-- rebuilds the table in place, online. The index is built online (in place,
-- concurrent DML allowed) on MariaDB and MySQL alike.
ALTER TABLE sublessor_call_log_201409
  ADD COLUMN order_allocated TINYINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT '0 no order yet, 1 has its payment row (set in that transaction), 2 written off: never charged',
  LOCK=NONE;
ALTER TABLE sublessor_call_log_201409
  ADD KEY idx_unallocated (filter_rule, order_allocated), LOCK=NONE;
