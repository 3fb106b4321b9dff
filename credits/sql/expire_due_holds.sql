-- Expire the holds whose time is up of accounts the caller has locked, in one statement:
-- each ends as 'expired', dated at its expires_at, and gives its shares back to their
-- lots (a trigger in append_only.sql); a share whose lot's date has passed then waits
-- for expire_due_lots.sql, which the caller runs next, in the same transaction.
--
-- Parameters (psycopg's named placeholders): accounts bigint[], now timestamptz (the
-- caller's moment). Answers the ids of the holds expired.
-- credits.services runs this file's text (read once, at import).

UPDATE credits_credithold h SET status = 'expired', closed_at = h.expires_at
WHERE h.account_id = ANY(%(accounts)s::bigint[]) AND h.status = 'held'
  AND h.expires_at <= %(now)s
RETURNING h.id
