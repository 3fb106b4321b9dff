-- pgbench script: what add_credits (30%) and deduct_credits (70%) send to PostgreSQL, one
-- call of credits_post_adjustment each, run by pgbench's C client instead of Python (see
-- bench/writes.py: ledger_sql_script). :first and :last bound the customers' user ids.
\set user random(:first, :last)
\set amt random(1, 8)
\set r random(1, 100)
\if :r <= {deduct_percent}
SELECT * FROM credits_post_adjustment(:user, NULL, 'admin_charge', -:amt, NULL, '', NULL, NULL, now(), '{zone}', 'credits_deducted', ARRAY[:user]::bigint[], ARRAY[:amt || ' credits deducted from your balance']::varchar[], ARRAY[:amt || ' credits were deducted from your balance.']::text[], '/membership/transactions/');
\else
SELECT * FROM credits_post_adjustment(:user, NULL, 'admin_allocation', 10, CURRENT_DATE + 30, '', NULL, NULL, now(), '{zone}', 'credits_added', ARRAY[:user]::bigint[], ARRAY['10 credits added to your balance']::varchar[], ARRAY['10 credits were added to your balance. They expire in 30 days.']::text[], '/membership/transactions/');
\endif
