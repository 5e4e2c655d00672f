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
-- at most 10,000 calls that resume where they stopped, a few seconds per charge
-- pass (payments/flags.py, docs/payments.md "Flagging the history").
--
-- The column is added last with a constant default and WITHOUT a LOCK clause, so
-- the server picks its cheapest way: instant (metadata only) on MariaDB 10.3+
-- (10.11 checked) and MySQL 8.0.12+; in place and online on MySQL 5.7. An
-- explicit LOCK=NONE here would make MySQL 8 refuse the instant add and rebuild
-- the table online instead: hours on a call log of 100M rows. (An earlier
-- version of this file said LOCK=NONE; on MariaDB it was instant all the same.)
-- The index says LOCK=NONE: it is built in place with reads and writes going on,
-- on MariaDB and MySQL alike, and a server that could not do that refuses at
-- once instead of locking the call log.
ALTER TABLE sublessor_call_log_201409
  ADD COLUMN order_allocated TINYINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT '0 no order yet, 1 has its payment row (set in that transaction), 2 written off: never charged';
ALTER TABLE sublessor_call_log_201409
  ADD KEY idx_unallocated (filter_rule, order_allocated), LOCK=NONE;
