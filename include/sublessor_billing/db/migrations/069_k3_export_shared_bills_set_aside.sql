-- K3 contract export: set aside the rows that share one K3 bill (k3_id) with another
-- contract, which an earlier recovery could leave behind, so that migration 070's
-- unique key on k3_id cannot fail. Migrations run when any task opens
-- user_prop_db, so a failing 070 would stop every billing DAG for a K3 data
-- problem. Such a row keeps its FID here, loses k3_id and gets state 'conflict':
-- the export sends nothing for it (never creates it) and names it on every run
-- until an operator decides which contract owns the bill
-- (docs/k3_contract_export.md, "Contracts that shared one K3 bill").
-- Numbered before 070 so that it runs first wherever 070 is not applied yet;
-- where 070 is applied no two rows can share a bill and this changes nothing.
CREATE TABLE IF NOT EXISTS k3_contract_export_conflict (
  contract_id    INT UNSIGNED NOT NULL,
  k3_id          BIGINT       NOT NULL COMMENT 'K3 FID this contract shared with another',
  contract_no    VARCHAR(32)  NOT NULL COMMENT 'the row''s contract_no when set aside',
  previous_state VARCHAR(16)  NOT NULL,
  set_aside_at   DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (contract_id),
  KEY idx_k3_id (k3_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO k3_contract_export_conflict (contract_id, k3_id, contract_no, previous_state)
SELECT s.contract_id, s.k3_id, s.contract_no, s.state
FROM k3_contract_export_state s
JOIN (
  SELECT k3_id FROM k3_contract_export_state
  WHERE k3_id IS NOT NULL GROUP BY k3_id HAVING COUNT(*) > 1
) shared ON shared.k3_id = s.k3_id;

UPDATE k3_contract_export_state s
JOIN k3_contract_export_conflict c ON c.contract_id = s.contract_id AND c.k3_id = s.k3_id
SET s.state = 'conflict', s.k3_id = NULL,
    s.last_error = CONCAT('K3 bill FID ', c.k3_id, ' was recorded for this contract and for ',
                          'another one (k3_contract_export_conflict lists them)');
