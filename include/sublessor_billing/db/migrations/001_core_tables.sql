-- Tables of user_prop_db that this project owns. Portable to MySQL 5.7+/8 and
-- MariaDB 10.6+. Every statement can run again after an interrupted migration
-- (CREATE ... IF NOT EXISTS; migrate.py skips "already exists" errors of ALTERs).

CREATE TABLE IF NOT EXISTS broker_phone (
  broker_id               INT UNSIGNED NOT NULL,
  phone                   VARCHAR(32)  NOT NULL COMMENT 'normalized mobile (phone.normalize_phone)',
  source_updated_datetime DATETIME     NOT NULL COMMENT 'ajk_brokerextend.updated_datetime copied',
  synced_at               DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (broker_id),
  KEY idx_phone (phone)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS sublessor_call_log_201409 (
  id                BIGINT UNSIGNED  NOT NULL AUTO_INCREMENT COMMENT 'arrival order',
  call_id           VARCHAR(64)      CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'exact: case matters',
  sublessor_id      INT UNSIGNED     NOT NULL,
  prop_id           INT UNSIGNED     NOT NULL DEFAULT 0,
  caller            VARCHAR(64)      NOT NULL COMMENT 'as received',
  caller_normalized VARCHAR(64)      NOT NULL DEFAULT '' COMMENT 'empty for a withheld number',
  called            VARCHAR(64)      NOT NULL,
  ext               VARCHAR(64)      NOT NULL DEFAULT '',
  status            INT              NOT NULL,
  start_time        DATETIME         NOT NULL COMMENT 'Asia/Shanghai',
  duration          INT UNSIGNED     NOT NULL,
  call_type         VARCHAR(16)      NOT NULL DEFAULT 'normal' COMMENT 'normal | callback',
  filter_rule       TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT '0 unjudged, 1 valid, 2-5 invalid',
  received_at       DATETIME(3)      NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  judged_at         DATETIME(3)      NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_call_id (call_id),
  -- Unjudged calls are (0, NULL, start_time, id): the judge reads them in order;
  -- order allocation reads (1, judged_at >= high-water) and (1, NULL). One index
  -- with filter_rule, so a judged call moves in one secondary index, not three.
  KEY idx_filter_rule (filter_rule, judged_at, start_time, id),
  -- The judge's repeat lookup: a pair's calls in a start_time range (filter_rule
  -- is read from the row: a pair has few calls, and judging does not move this key).
  KEY idx_caller_sublessor (caller_normalized, sublessor_id, start_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- id is the order id sent to the payment center: allocated by InnoDB's
-- auto-increment from 820000000000 (persistent across restarts, never reused).
CREATE TABLE IF NOT EXISTS sublessor_call_payment_log_201409 (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  call_id        VARCHAR(64)     CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  sublessor_id   INT UNSIGNED    NOT NULL,
  amount         BIGINT          NOT NULL COMMENT 'fen',
  subject        VARCHAR(128)    NOT NULL COMMENT 'sent unchanged on every retry',
  call_type      VARCHAR(16)     NOT NULL DEFAULT 'normal',
  status         VARCHAR(16)     NOT NULL DEFAULT 'pending' COMMENT 'pending | success | insufficient | failed',
  result_code    INT             NULL,
  result_message VARCHAR(255)    NULL,
  balance_after  BIGINT          NULL COMMENT 'fen, as answered by the payment center',
  attempts       INT UNSIGNED    NOT NULL DEFAULT 0,
  last_error     VARCHAR(512)    NULL COMMENT 'why the row is still pending',
  created_at     DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  sent_at        DATETIME(3)     NULL,
  settled_at     DATETIME(3)     NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_call_id (call_id),
  KEY idx_status (status, sublessor_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 AUTO_INCREMENT=820000000000;

-- Never hand out an order id below the range assigned to this system, even if
-- the table was created earlier by other means (no-op when already higher).
ALTER TABLE sublessor_call_payment_log_201409 AUTO_INCREMENT = 820000000000;

-- One row per decision to take a sublessor's listings offline.
CREATE TABLE IF NOT EXISTS sublessor_offline_event (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  request_id       VARCHAR(64)     NOT NULL COMMENT 'sent to the listing service; its idempotency key',
  sublessor_id     INT UNSIGNED    NOT NULL,
  trigger_order_id BIGINT UNSIGNED NOT NULL COMMENT 'the charge that caused the decision',
  reason           VARCHAR(255)    NOT NULL,
  status           VARCHAR(16)     NOT NULL DEFAULT 'pending' COMMENT 'pending | done',
  offlined         INT             NULL COMMENT 'listings taken offline, as answered',
  attempts         INT UNSIGNED    NOT NULL DEFAULT 0,
  last_error       VARCHAR(512)    NULL,
  created_at       DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  done_at          DATETIME(3)     NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_request_id (request_id),
  UNIQUE KEY uk_trigger_order (trigger_order_id),
  KEY idx_status (status, id),
  KEY idx_sublessor (sublessor_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Messages that failed validation: raw bytes and reason, for an operator to replay.
CREATE TABLE IF NOT EXISTS call400_quarantine (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  body_sha256   CHAR(64)        NOT NULL,
  raw_body      LONGBLOB        NOT NULL,
  reason        VARCHAR(512)    NOT NULL,
  call_id       VARCHAR(255)    NULL COMMENT 'when one could be read',
  routing_key   VARCHAR(255)    NULL,
  seen_count    INT UNSIGNED    NOT NULL DEFAULT 1,
  status        VARCHAR(16)     NOT NULL DEFAULT 'quarantined' COMMENT 'quarantined | replayed | discarded',
  received_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  resolved_at   DATETIME(3)     NULL,
  resolution    VARCHAR(512)    NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_body (body_sha256),
  KEY idx_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Cursors of the incremental jobs, advanced in the same transaction as the work.
CREATE TABLE IF NOT EXISTS job_cursor (
  name          VARCHAR(64)  NOT NULL,
  position_id   BIGINT       NULL,
  position_time DATETIME     NULL,
  updated_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS sublessor_accounting_income_201409 (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  payment_id   BIGINT UNSIGNED NOT NULL,
  contract_id  INT UNSIGNED    NULL COMMENT 'NULL: no contract could take it',
  contract_key INT UNSIGNED    AS (IFNULL(contract_id, 0)) STORED,
  sublessor_id INT UNSIGNED    NOT NULL,
  amount       BIGINT          NOT NULL COMMENT 'fen',
  call_date    DATE            NOT NULL,
  created_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uk_payment_contract (payment_id, contract_key),
  KEY idx_contract (contract_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Payments that were still pending when the accounting cursor passed them.
CREATE TABLE IF NOT EXISTS accounting_unsettled_payment (
  payment_id BIGINT UNSIGNED NOT NULL,
  seen_at    DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (payment_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS k3_contract_export_state (
  contract_id      INT UNSIGNED NOT NULL,
  contract_no      VARCHAR(32)  NOT NULL,
  k3_id            BIGINT       NULL COMMENT 'K3 FID',
  k3_number        VARCHAR(64)  NULL,
  exported_version DATETIME     NULL COMMENT 'sublessor_contract.updated_datetime last exported',
  state            VARCHAR(16)  NOT NULL COMMENT 'in_flight | exported | refused',
  last_error       TEXT         NULL,
  attempts         INT UNSIGNED NOT NULL DEFAULT 0,
  updated_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (contract_id),
  KEY idx_contract_no (contract_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
