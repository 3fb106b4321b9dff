-- notifications_write: the one writer of notifications, for every app that tells members
-- something (credits' adjustment function calls it in its own round trip; Python calls it
-- through notifications.services.write for the expiry sweep and the reminders).
--
-- One row per element of the arrays (recipient, subject, body, link, balance, reference,
-- and address), all of kind p_kind and dated p_created_at. A row whose recipient is NULL
-- is an email alone, to its address (a company's billing email); p_addresses may be left
-- out when every row has a recipient. The email waits ('pending') unless the
-- recipient turned off the emails of that kind in their preferences: the mapping of kinds
-- to preferences lives here and nowhere else. A reference (what the notice is about, such
-- as 'transaction:42' or 'expiring-lot:7') is told to a recipient once: a second row for
-- the same recipient (or address) and reference is not written. Subjects are cut to 200 characters.
--
-- A pending email is due at once (next_attempt_at = p_created_at: the caller's clock, not
-- the database's). The relay (notifications/delivery.py), which looks for due rows every
-- 0.1 s, hands them to Celery; the request never talks to the broker. No pg_notify: a
-- NOTIFY takes one database-wide lock at commit, held through the commit's WAL flush, so
-- every adjustment would commit one after another (docs/delivery.md, "Why the relay polls").
--
-- Answers how many rows it wrote, and the ids of those whose email waits, in id order.
--
-- Every function here is planned once per connection (SET plan_cache_mode =
-- force_generic_plan): left to choose, PostgreSQL planned their array-parameter queries
-- afresh on every call (custom plans looked cheaper), which cost more than running them
-- (notifications_write: 0.27 ms a call against 0.11 ms; docs/performance.md, round six).
--
-- This file is the function: change it here and add a migration that applies it again
-- (notifications.sql_files.apply). Applying it twice changes nothing.

-- The function before p_addresses (a new argument makes a second function otherwise).
DROP FUNCTION IF EXISTS notifications_write(
    varchar, timestamptz, bigint[], varchar[], text[], varchar[], numeric[], varchar[]);

CREATE OR REPLACE FUNCTION notifications_write(
    p_kind varchar, p_created_at timestamptz, p_recipients bigint[], p_subjects varchar[],
    p_bodies text[], p_links varchar[], p_balances numeric[], p_references varchar[],
    p_addresses varchar[] DEFAULT NULL,
    OUT written bigint, OUT emails bigint[]
) AS $$
BEGIN
    -- PL/pgSQL, not SQL: its plan is kept per connection instead of made on every call.
    WITH told AS (
        SELECT r.*, CASE
            WHEN p_kind IN ('credits_added', 'credits_deducted', 'credits_held')
                THEN COALESCE(p.email_credit_updates, true)
            WHEN p_kind IN ('credits_expiring', 'credits_expired')
                THEN COALESCE(p.email_expiry_reminders, true)
            ELSE true END AS email_wanted
        FROM unnest(p_recipients, p_subjects, p_bodies, p_links, p_balances, p_references,
                    p_addresses)
             AS r(recipient_id, subject, body, link, balance_after, reference, email_to)
        LEFT JOIN notifications_notificationpreferences p ON p.user_id = r.recipient_id
    ),
    inserted AS (
        INSERT INTO notifications_notification
            (recipient_id, email_to, kind, subject, body, link, balance_after, reference,
             created_at, email_status, email_attempts, email_error, next_attempt_at)
        SELECT recipient_id, CASE WHEN recipient_id IS NULL THEN email_to ELSE '' END,
               p_kind, left(subject, 200), body, link, balance_after, reference, p_created_at,
               CASE WHEN email_wanted THEN 'pending' ELSE 'off' END, 0, '',
               CASE WHEN email_wanted THEN p_created_at END
        FROM told
        -- Told once: per recipient, or per address (two unique indexes, so no target).
        ON CONFLICT DO NOTHING
        RETURNING id, email_status
    )
    SELECT count(*),
           COALESCE(array_agg(id ORDER BY id) FILTER (WHERE email_status = 'pending'), '{}')
    INTO written, emails
    FROM inserted;
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;
