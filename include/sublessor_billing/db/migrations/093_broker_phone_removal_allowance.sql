-- Each manually triggered broker_phone_sync run allowed to remove numbers beyond
-- the share (Param allow_removals_up_to): how many, and how many it removed in all
-- its tries. Written in the sync's own transaction (docs/broker_phone_sync.md).
CREATE TABLE IF NOT EXISTS broker_phone_removal_allowance (
  run_id     VARCHAR(250) NOT NULL COMMENT 'the DAG run (Airflow run_id)',
  up_to      INT UNSIGNED NOT NULL COMMENT 'its allow_removals_up_to',
  removed    INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'numbers its accepted syncs removed',
  created_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (run_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
