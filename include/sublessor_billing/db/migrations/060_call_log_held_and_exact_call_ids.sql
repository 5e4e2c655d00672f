-- Calls the judge cannot judge are held, not left to stop the others: filter_rule
-- stays 0, judged_at is when it was held, held_reason says why (calls/held.py).
-- NULL for every call that is not held.
ALTER TABLE sublessor_call_log_201409
  ADD COLUMN held_reason VARCHAR(255) NULL COMMENT 'why the judge holds this call; NULL: not held' AFTER judged_at;
