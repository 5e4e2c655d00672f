-- Owned by the broker system; shipped for tests and the demo only.
CREATE TABLE IF NOT EXISTS ajk_brokerextend (
  BrokerId         INT UNSIGNED NOT NULL,
  UserMobile       VARCHAR(20)  NOT NULL DEFAULT '',
  TrueName         VARCHAR(50)  NOT NULL DEFAULT '',
  updated_datetime DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (BrokerId),
  KEY idx_updated_datetime (updated_datetime)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
