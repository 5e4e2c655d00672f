-- K3 contract export: fingerprint of the Model last exported, so that a CRM edit
-- made within the same second as the exported version is still noticed.
ALTER TABLE k3_contract_export_state
  ADD COLUMN exported_digest CHAR(64) NULL AFTER exported_version;
