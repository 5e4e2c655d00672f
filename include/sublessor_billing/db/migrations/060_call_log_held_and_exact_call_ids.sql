-- Calls the judge cannot judge are held, not left to stop the others: filter_rule
-- stays 0, judged_at is when it was held, held_reason says why (calls/held.py).
-- NULL for every call that is not held.
ALTER TABLE sublessor_call_log_201409
  ADD COLUMN held_reason VARCHAR(255) NULL COMMENT 'why the judge holds this call; NULL: not held' AFTER judged_at;

-- call_id compares exactly: case AND trailing spaces count ('c1' and 'c1 ' are two
-- calls). utf8mb4_bin is PAD SPACE on MariaDB and MySQL 5.7, so the unique keys
-- took 'c1 ' for a duplicate of 'c1' (never logged, never charged) and the
-- allocation's NOT EXISTS took it for already ordered. Every table holding a
-- call_id gets the same NO PAD binary comparison: utf8mb4_0900_bin (MySQL 8) or
-- utf8mb4_nopad_bin (MariaDB 10.2+), found in information_schema.COLLATIONS;
-- where neither exists (MySQL 5.7), VARBINARY: bytes, compared exactly, never
-- padded (mysqlclient then returns call_id as bytes). Re-running changes nothing.
SET @call_id_collation = (SELECT MIN(COLLATION_NAME) FROM information_schema.COLLATIONS
  WHERE COLLATION_NAME IN ('utf8mb4_0900_bin', 'utf8mb4_nopad_bin'));
SET @call_id_64 = IF(@call_id_collation IS NULL, 'VARBINARY(256)',
  CONCAT('VARCHAR(64) CHARACTER SET utf8mb4 COLLATE ', @call_id_collation));
SET @call_id_255 = IF(@call_id_collation IS NULL, 'VARBINARY(1020)',
  CONCAT('VARCHAR(255) CHARACTER SET utf8mb4 COLLATE ', @call_id_collation));

SET @ddl = CONCAT('ALTER TABLE sublessor_call_log_201409 MODIFY call_id ', @call_id_64,
  ' NOT NULL COMMENT ''exact: case and trailing spaces matter''');
PREPARE exact_call_id FROM @ddl;
EXECUTE exact_call_id;
DEALLOCATE PREPARE exact_call_id;

SET @ddl = CONCAT('ALTER TABLE sublessor_call_payment_log_201409 MODIFY call_id ', @call_id_64,
  ' NOT NULL COMMENT ''compared with the call log''''s call_id: same type''');
PREPARE exact_call_id FROM @ddl;
EXECUTE exact_call_id;
DEALLOCATE PREPARE exact_call_id;

SET @ddl = CONCAT('ALTER TABLE call400_quarantine MODIFY call_id ', @call_id_255,
  ' NULL COMMENT ''when one could be read''');
PREPARE exact_call_id FROM @ddl;
EXECUTE exact_call_id;
DEALLOCATE PREPARE exact_call_id;
