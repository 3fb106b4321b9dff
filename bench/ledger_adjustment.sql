-- pgbench script: the statements add_credits (30%) and deduct_credits (70%) send, in the
-- same order, run by pgbench's C client (see bench/writes.py: ledger_sql_script).
\set acc random(:first, :last)
\set amt random(1, 8)
\set r random(1, 100)
BEGIN;
SELECT id, balance, last_seq + 1 AS seq FROM credits_creditaccount WHERE id = :acc FOR UPDATE \gset
SELECT 1 AS due FROM credits_creditlot WHERE account_id = :acc AND remaining > 0 AND expires_on < CURRENT_DATE LIMIT 1;
\if :r <= {deduct_percent}
INSERT INTO credits_credittransaction (account_id, seq, kind, amount, balance_after, memo, created_at) VALUES (:acc, :seq, 'admin_charge', -:amt, :balance - :amt, '', now()) RETURNING id AS tx_id \gset
{take};
UPDATE credits_creditaccount SET balance = :balance - :amt, last_seq = :seq WHERE id = :acc;
\else
INSERT INTO credits_credittransaction (account_id, seq, kind, amount, balance_after, memo, created_at, expires_on) VALUES (:acc, :seq, 'admin_allocation', 10, :balance + 10, '', now(), CURRENT_DATE + 30) RETURNING id AS tx_id, created_at \gset
INSERT INTO credits_creditlot (account_id, allocation_id, amount, remaining, expires_on, created_at) VALUES (:acc, :tx_id, 10, 10, CURRENT_DATE + 30, now());
UPDATE credits_creditaccount SET balance = :balance + 10, last_seq = :seq WHERE id = :acc;
\endif
END;
