-- Billing operations: the Billing page and its JSON API, quarantine actions, the
-- billing_alerts DAG (docs/billing_operations.md). Rerunnable: CREATE ... IF NOT
-- EXISTS; an index already there is error 1061, which migrate.py skips.
-- Adding an index is an online operation on InnoDB (reads and writes go on).

-- The calls of a day (page, API, metrics), from the index alone: received_at only
-- grows, so new entries go to the end of the key (a key on start_time takes
-- late and early calls in random leaves: intake measured 2x slower), and judging
-- moves an entry within its leaf (same received_at), a page intake just wrote.
ALTER TABLE sublessor_call_log_201409 ADD KEY idx_received (received_at, filter_rule);

-- The orders of a day, by outcome, from the index alone. status changes once
-- (pending -> settled) and the entry stays in its leaf: created_at leads the key.
ALTER TABLE sublessor_call_payment_log_201409 ADD KEY idx_created (created_at, status, amount);

-- The offline decisions of a day.
ALTER TABLE sublessor_offline_event ADD KEY idx_created (created_at);

-- K3 export errors, newest first.
ALTER TABLE k3_contract_export_state ADD KEY idx_state (state, updated_at);

-- Who did what to the quarantine, from the page or the command, written in the
-- same transaction as the change it records.
CREATE TABLE IF NOT EXISTS billing_ops_action (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  acted_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  actor         VARCHAR(255)    NOT NULL COMMENT 'Airflow user name, or cli:<os user>',
  action        VARCHAR(32)     NOT NULL COMMENT 'replay | discard',
  quarantine_id BIGINT UNSIGNED NOT NULL,
  detail        VARCHAR(1024)   NOT NULL COMMENT 'the resolution written on the quarantine row',
  PRIMARY KEY (id),
  KEY idx_quarantine (quarantine_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- State of each alert of the billing_alerts DAG: whether it is firing, since
-- when, when it was last notified, and the value it watches.
CREATE TABLE IF NOT EXISTS billing_alert (
  name        VARCHAR(64)   NOT NULL,
  active      TINYINT       NOT NULL DEFAULT 0,
  since       DATETIME(3)   NULL COMMENT 'condition began, or the watched value last changed',
  notified_at DATETIME(3)   NULL,
  value       BIGINT        NULL COMMENT 'last quarantine id reported; successful run count',
  detail      VARCHAR(1024) NULL,
  updated_at  DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
