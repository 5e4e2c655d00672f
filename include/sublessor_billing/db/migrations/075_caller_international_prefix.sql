-- Phone normalization reads a leading 00 as the international prefix for every
-- country code, not only for 0086 (phone.normalize_phone): '00852 9123 4567' is
-- '85291234567', the same caller as '+852 9123 4567' and as a broker whose mobile
-- is '+852 9123 4567'. Calls logged before kept the 00: give them the new form,
-- so that the repeat rule (same caller) and the broker rule compare them with
-- the calls logged from now on. Served by idx_caller_sublessor; rerunnable: a
-- rewritten number no longer starts with 00 and a country code (never 0).
-- A stored '0086...' can only come from a '+86' in front of a '0086' number;
-- it is left as it is.
UPDATE sublessor_call_log_201409
   SET caller_normalized = SUBSTRING(caller_normalized, 3)
 WHERE caller_normalized LIKE '00%'
   AND SUBSTRING(caller_normalized, 3, 1) BETWEEN '1' AND '9'
   AND caller_normalized NOT LIKE '0086%';
