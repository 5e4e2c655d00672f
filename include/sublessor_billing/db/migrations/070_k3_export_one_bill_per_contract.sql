-- K3 contract export: a K3 bill (FID) belongs to one contract at most, so an
-- adoption by number can never hand one bill to two contracts. contract_no stays
-- a plain index: numbers move between contracts (CRM renames and swaps them), and
-- the row's contract_no is the number last sent to K3, which is what a lost
-- create must be looked up by (docs/k3_contract_export.md).
ALTER TABLE k3_contract_export_state
  ADD UNIQUE KEY uk_k3_id (k3_id);

ALTER TABLE k3_contract_export_state
  MODIFY COLUMN contract_no VARCHAR(32) NOT NULL
  COMMENT 'bill number last sent to K3; not unique: CRM renames and swaps numbers';
