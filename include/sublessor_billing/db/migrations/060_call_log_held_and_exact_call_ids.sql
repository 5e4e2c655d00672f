-- Held calls and exact call ids: one ALTER per table, each made only of what the
-- table still lacks. Re-running changes nothing, and a change applied beforehand
-- out of band (pt-online-schema-change or gh-ost: docs/intake.md "Migration 060 on
-- a large MySQL database") is recognised by its effects and simply recorded.
--
-- Held calls (calls.held): a call the judge cannot judge keeps filter_rule 0;
-- judged_at is when it was last held, held_reason why (NULL: not held), held_count
-- how many times the judge held it (a call it failed on is retried, calls.held).
--
-- call_id compares exactly: case AND trailing spaces count ('c1' and 'c1 ' are two
-- calls). utf8mb4_bin is PAD SPACE on MariaDB and MySQL 5.7, so the unique keys
-- took 'c1 ' for a duplicate of 'c1' (never logged, never charged) and the
-- allocation's NOT EXISTS took it for already ordered. Every column holding a
-- call_id gets a NO PAD binary comparison, chosen by what the server does, not by
-- name (MariaDB 11.4.5+ has utf8mb4_0900_bin as a PAD SPACE alias of utf8mb4_bin):
-- utf8mb4_nopad_bin (MariaDB) or else utf8mb4_0900_bin (MySQL 8), whichever exists
-- and tells 'c1' from 'c1 ' and from 'C1'; where none does (MySQL 5.7), VARBINARY:
-- bytes, compared exactly, never padded (mysqlclient then returns bytes).
--
-- Locks: a table of more than 100,000 rows is altered with LOCK=NONE, which
-- MariaDB does online (10.11 checked) and MySQL 5.7/8 refuses at once (changing an indexed
-- column's collation or type copies the table there): the migration then fails,
-- nothing is locked or changed, and 060 is to be applied out of band first. The
-- runner waits at most 60 s for a table lock (db/migrate.py), then fails.

-- 1. The collation, tried on the server (nopad_bin first).
SET @call_id_collation = NULL;
SET @probe = (SELECT CONCAT('SELECT CASE', GROUP_CONCAT(
    ' WHEN _utf8mb4''c1'' <> _utf8mb4''c1 '' COLLATE ', COLLATION_NAME,
    ' AND _utf8mb4''c1'' <> _utf8mb4''C1'' COLLATE ', COLLATION_NAME,
    ' THEN ''', COLLATION_NAME, ''''
    ORDER BY COLLATION_NAME <> 'utf8mb4_nopad_bin' SEPARATOR ''),
  ' END INTO @call_id_collation')
  FROM information_schema.COLLATIONS
  WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin'));
SET @probe = IFNULL(@probe, 'DO 0');
PREPARE migration_060 FROM @probe;
EXECUTE migration_060;
SET @call_id_64 = IF(@call_id_collation IS NULL, 'VARBINARY(256)',
  CONCAT('VARCHAR(64) CHARACTER SET utf8mb4 COLLATE ', @call_id_collation));
SET @call_id_255 = IF(@call_id_collation IS NULL, 'VARBINARY(1020)',
  CONCAT('VARCHAR(255) CHARACTER SET utf8mb4 COLLATE ', @call_id_collation));

-- 2. What each table already has. A call_id column is exact when it tells 'c1',
--    'c1 ' and 'C1' apart (the column's own comparison: it types the UNION).
SELECT
  (SELECT COUNT(DISTINCT v) = 3 FROM (SELECT call_id AS v FROM sublessor_call_log_201409 WHERE FALSE
    UNION ALL SELECT 'c1' UNION ALL SELECT 'c1 ' UNION ALL SELECT 'C1') probe),
  (SELECT COUNT(DISTINCT v) = 3 FROM (SELECT call_id AS v FROM sublessor_call_payment_log_201409 WHERE FALSE
    UNION ALL SELECT 'c1' UNION ALL SELECT 'c1 ' UNION ALL SELECT 'C1') probe),
  (SELECT COUNT(DISTINCT v) = 3 FROM (SELECT call_id AS v FROM call400_quarantine WHERE FALSE
    UNION ALL SELECT 'c1' UNION ALL SELECT 'c1 ' UNION ALL SELECT 'C1') probe)
INTO @log_exact, @payment_exact, @quarantine_exact;
SELECT
  SUM(TABLE_NAME = 'sublessor_call_log_201409' AND COLUMN_NAME = 'held_reason'),
  SUM(TABLE_NAME = 'sublessor_call_log_201409' AND COLUMN_NAME = 'held_count'),
  MAX(IF(TABLE_NAME = 'sublessor_call_log_201409' AND COLUMN_NAME = 'call_id', CHARACTER_MAXIMUM_LENGTH, 0)),
  MAX(IF(TABLE_NAME = 'sublessor_call_payment_log_201409' AND COLUMN_NAME = 'call_id', CHARACTER_MAXIMUM_LENGTH, 0)),
  MAX(IF(TABLE_NAME = 'call400_quarantine' AND COLUMN_NAME = 'call_id', CHARACTER_MAXIMUM_LENGTH, 0))
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE()
  AND TABLE_NAME IN ('sublessor_call_log_201409', 'sublessor_call_payment_log_201409', 'call400_quarantine')
INTO @log_held_reason, @log_held_count, @log_width, @payment_width, @quarantine_width;
SELECT
  (SELECT COUNT(*) FROM (SELECT 1 FROM sublessor_call_log_201409 LIMIT 100001) r) > 100000,
  (SELECT COUNT(*) FROM (SELECT 1 FROM sublessor_call_payment_log_201409 LIMIT 100001) r) > 100000,
  (SELECT COUNT(*) FROM (SELECT 1 FROM call400_quarantine LIMIT 100001) r) > 100000
INTO @log_large, @payment_large, @quarantine_large;

-- 3. Pre-flight: a wider (older) column holding longer ids would be cut by the
--    MODIFY under a relaxed sql_mode. Each row returned stops the migration with
--    its message, before anything is altered.
SET @check = CONCAT_WS(' UNION ALL ',
  IF(@log_exact OR @log_width <= 64, NULL, CONCAT('SELECT CONCAT(COUNT(*), '' call_id values of ',
    'sublessor_call_log_201409 are longer than 64 characters: making call_id exact would cut them. ',
    'Nothing was changed; find them (WHERE CHAR_LENGTH(call_id) > 64) and decide what they are ',
    'before migrating again'') FROM sublessor_call_log_201409 WHERE CHAR_LENGTH(call_id) > 64 HAVING COUNT(*) > 0')),
  IF(@payment_exact OR @payment_width <= 64, NULL, CONCAT('SELECT CONCAT(COUNT(*), '' call_id values of ',
    'sublessor_call_payment_log_201409 are longer than 64 characters: making call_id exact would cut them. ',
    'Nothing was changed; find them (WHERE CHAR_LENGTH(call_id) > 64) and decide what they are ',
    'before migrating again'') FROM sublessor_call_payment_log_201409 WHERE CHAR_LENGTH(call_id) > 64 HAVING COUNT(*) > 0')),
  IF(@quarantine_exact OR @quarantine_width <= 255, NULL, CONCAT('SELECT CONCAT(COUNT(*), '' call_id values of ',
    'call400_quarantine are longer than 255 characters: making call_id exact would cut them. ',
    'Nothing was changed; find them (WHERE CHAR_LENGTH(call_id) > 255) and decide what they are ',
    'before migrating again'') FROM call400_quarantine WHERE CHAR_LENGTH(call_id) > 255 HAVING COUNT(*) > 0')));
SET @check = IF(@check = '', 'DO 0', @check);
PREPARE migration_060 FROM @check;
EXECUTE migration_060;

-- 4. One ALTER per table, of what it lacks; no AFTER (instant ADD COLUMN on MySQL
--    8.0.12+ and MariaDB 10.3+ needs the column last).
SET @log_ddl = CONCAT_WS(', ',
  IF(@log_held_reason, NULL,
    'ADD COLUMN held_reason VARCHAR(255) NULL COMMENT ''why the judge holds this call; NULL: not held'''),
  IF(@log_held_count, NULL,
    'ADD COLUMN held_count TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT ''times the judge held this call'''),
  IF(@log_exact, NULL,
    CONCAT('MODIFY call_id ', @call_id_64, ' NOT NULL COMMENT ''exact: case and trailing spaces count''')));
SET @log_ddl = IF(@log_ddl = '', 'DO 0',
  CONCAT('ALTER TABLE sublessor_call_log_201409 ', @log_ddl, IF(@log_large, ', LOCK=NONE', '')));
PREPARE migration_060 FROM @log_ddl;
EXECUTE migration_060;

SET @payment_ddl = IF(@payment_exact, 'DO 0',
  CONCAT('ALTER TABLE sublessor_call_payment_log_201409 MODIFY call_id ', @call_id_64,
    ' NOT NULL COMMENT ''exact: case and trailing spaces count''', IF(@payment_large, ', LOCK=NONE', '')));
PREPARE migration_060 FROM @payment_ddl;
EXECUTE migration_060;

SET @quarantine_ddl = IF(@quarantine_exact, 'DO 0',
  CONCAT('ALTER TABLE call400_quarantine MODIFY call_id ', @call_id_255,
    ' NULL COMMENT ''when one could be read; exact''', IF(@quarantine_large, ', LOCK=NONE', '')));
PREPARE migration_060 FROM @quarantine_ddl;
EXECUTE migration_060;
DEALLOCATE PREPARE migration_060;

-- 5. Check what the server now does with each column; a row stops the migration.
SELECT CONCAT(TABLE_NAME, '.call_id still takes ''c1'', ''c1 '' or ''C1'' for the same call id ',
    '(collation chosen: ', IFNULL(@call_id_collation, 'none, VARBINARY'), '): such calls would be ',
    'dropped as duplicates. 060 is not recorded; see docs/intake.md "Exact call ids"')
FROM (
  SELECT 'sublessor_call_log_201409' AS TABLE_NAME, (SELECT COUNT(DISTINCT v) FROM (
    SELECT call_id AS v FROM sublessor_call_log_201409 WHERE FALSE
    UNION ALL SELECT 'c1' UNION ALL SELECT 'c1 ' UNION ALL SELECT 'C1') probe) AS distinct_ids
  UNION ALL
  SELECT 'sublessor_call_payment_log_201409', (SELECT COUNT(DISTINCT v) FROM (
    SELECT call_id AS v FROM sublessor_call_payment_log_201409 WHERE FALSE
    UNION ALL SELECT 'c1' UNION ALL SELECT 'c1 ' UNION ALL SELECT 'C1') probe)
  UNION ALL
  SELECT 'call400_quarantine', (SELECT COUNT(DISTINCT v) FROM (
    SELECT call_id AS v FROM call400_quarantine WHERE FALSE
    UNION ALL SELECT 'c1' UNION ALL SELECT 'c1 ' UNION ALL SELECT 'C1') probe)
) checked
WHERE distinct_ids < 3;
