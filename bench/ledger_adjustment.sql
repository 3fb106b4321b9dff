-- pgbench script: what add_credits (30%) and deduct_credits (70%) send to PostgreSQL, one
-- call of credits_post_adjustment each, run by pgbench's C client instead of Python (see
-- bench/writes.py: ledger_sql_script). :first and :last bound the customers' account ids,
-- :user_offset is user id less account id.
\set account random(:first, :last)
\set user :account + :user_offset
\set amt random(1, 8)
\set r random(1, 100)
\if :r <= {deduct_percent}
SELECT * FROM credits_post_adjustment(p_account_id => :account, p_kind => 'admin_charge', p_amount => -:amt, p_expires_on => NULL, p_memo => '', p_actor_id => NULL, p_key => NULL, p_now => now(), p_zone => '{zone}', p_notification_kind => 'credits_deducted', p_recipients => ARRAY[:user]::bigint[], p_subjects => ARRAY[:amt || ' credits deducted from your balance']::varchar[], p_bodies => ARRAY[:amt || ' credits were deducted from your balance.']::text[], p_link => '/membership/users/' || :user || '/transactions/', p_reference_prefix => 'transaction:');
\else
SELECT * FROM credits_post_adjustment(p_account_id => :account, p_kind => 'admin_allocation', p_amount => 10, p_expires_on => CURRENT_DATE + 30, p_memo => '', p_actor_id => NULL, p_key => NULL, p_now => now(), p_zone => '{zone}', p_notification_kind => 'credits_added', p_recipients => ARRAY[:user]::bigint[], p_subjects => ARRAY['10 credits added to your balance']::varchar[], p_bodies => ARRAY['10 credits were added to your balance. They expire in 30 days.']::text[], p_link => '/membership/users/' || :user || '/transactions/', p_reference_prefix => 'transaction:');
\endif
