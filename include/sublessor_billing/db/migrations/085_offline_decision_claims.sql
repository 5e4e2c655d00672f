-- An offline decision is claimed before its request is sent (payments/decisions.py
-- "claim"): one committed UPDATE per decision that counts the attempt and marks
-- who sends it until when, taken only while the decision is still pending, at
-- the attempt count the sender read, and not claimed by a live lease. So two
-- offline passes at once never send the same decision concurrently, and a
-- sender that dies between claim and answer leaves a lease that expires: a
-- later pass claims it again and sends the same request_id.
-- Added last, NULL by default, and without a LOCK clause, so the server picks
-- its cheapest way: instant on MariaDB 10.3+ / MySQL 8.0.12+ (an explicit
-- LOCK=NONE would make MySQL 8 rebuild the table instead), in place and online
-- on MySQL 5.7.
ALTER TABLE sublessor_offline_event
  ADD COLUMN claimed_by VARCHAR(64) NULL COMMENT 'host:pid:token of the pass sending it; NULL when not claimed',
  ADD COLUMN claimed_until DATETIME(3) NULL COMMENT 'the claim lapses then (request deadline + margin); NULL when not claimed';
