-- Owned by CRM; shipped for tests and the demo only.
CREATE TABLE IF NOT EXISTS sublessor_contract (
  id               INT UNSIGNED NOT NULL AUTO_INCREMENT,
  sublessor_id     INT UNSIGNED NOT NULL,
  contract_no      VARCHAR(32)  NOT NULL,
  total_amount     BIGINT       NOT NULL,
  balance          BIGINT       NOT NULL,
  start_date       DATE         NOT NULL,
  end_date         DATE         NOT NULL,
  status           TINYINT      NOT NULL DEFAULT 1,
  signed_at        DATETIME     NOT NULL,
  updated_datetime DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY uk_contract_no (contract_no),
  KEY idx_sublessor (sublessor_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
