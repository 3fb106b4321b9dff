-- Webhooks' outbox: a delivery per (event, enabled endpoint subscribed to it), written by
-- triggers in the transaction of the ledger row or hold it reports, whichever SQL writes
-- them (credits/sql/post_adjustment.sql, verbs.sql, expire_due_lots.sql,
-- expire_due_holds.sql). docs/api.md, "Webhooks".
--
-- Each trigger runs once per statement, with the rows the statement wrote (transition
-- tables, which the ledger's own triggers already collect). With no enabled endpoint
-- wanting the event it costs one probe of the endpoints table and writes nothing. It
-- notifies nobody: the relay polls (a NOTIFY's commit lock would make the ledger's
-- commits wait on each other; docs/delivery.md, "Why the relay polls").
-- A delivery is due at the event's own time (the ledger's clock, passed by the app,
-- never the database's now()). Rows are written in (account, event) order, so their ids,
-- taken under the account's lock, follow each customer's commit order.
--
-- This file is the triggers: change it here and add a migration that applies it again
-- (api.sql_files.apply). Applying it twice changes nothing.

-- Writes the deliveries of `p_event` for the events given as (object, account, moment).
CREATE OR REPLACE FUNCTION api_webhooks_write(
    p_event varchar, p_objects bigint[], p_accounts bigint[], p_moments timestamptz[]
) RETURNS void AS $$
BEGIN
    INSERT INTO api_webhookdelivery
        (endpoint_id, event, object_id, customer_key, created_at, status, attempts, error,
         next_attempt_at, payload)
    SELECT e.id, p_event, o.object_id, o.account_id, o.moment, 'pending', 0, '', o.moment, ''
    FROM unnest(p_objects, p_accounts, p_moments) WITH ORDINALITY
         AS o(object_id, account_id, moment, position)
    CROSS JOIN api_webhookendpoint e
    WHERE e.enabled AND e.events ? p_event
    ORDER BY o.account_id, o.position, e.id
    ON CONFLICT DO NOTHING;
END;
$$ LANGUAGE plpgsql;

-- Ledger rows written: credit_transaction.created for each (expiries included).
CREATE OR REPLACE FUNCTION api_webhooks_transactions_written() RETURNS trigger AS $$
BEGIN
    -- The probe first: without a subscriber the transition table is never read.
    IF NOT EXISTS (SELECT FROM api_webhookendpoint e
                   WHERE e.enabled AND e.events ? 'credit_transaction.created') THEN
        RETURN NULL;
    END IF;
    PERFORM api_webhooks_write('credit_transaction.created',
        array_agg(w.id ORDER BY w.account_id, w.seq),
        array_agg(w.account_id ORDER BY w.account_id, w.seq),
        array_agg(w.created_at ORDER BY w.account_id, w.seq))
    FROM written w;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS api_webhooks_transactions ON credits_credittransaction;
CREATE TRIGGER api_webhooks_transactions
    AFTER INSERT ON credits_credittransaction REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION api_webhooks_transactions_written();

-- Holds made (hold.created, at created_at) or ended (hold.captured, hold.released,
-- hold.expired, at closed_at: a hold ends once, credits/sql/append_only.sql).
CREATE OR REPLACE FUNCTION api_webhooks_holds_changed() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM api_webhookendpoint e
                   WHERE e.enabled AND e.events ?| ARRAY['hold.created', 'hold.captured',
                                                         'hold.released', 'hold.expired']) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM api_webhooks_write('hold.created',
            array_agg(h.id ORDER BY h.account_id, h.id),
            array_agg(h.account_id ORDER BY h.account_id, h.id),
            array_agg(h.created_at ORDER BY h.account_id, h.id))
        FROM changed h;
    ELSE
        PERFORM api_webhooks_write('hold.' || h.status,
            array_agg(h.id ORDER BY h.account_id, h.id),
            array_agg(h.account_id ORDER BY h.account_id, h.id),
            array_agg(h.closed_at ORDER BY h.account_id, h.id))
        FROM changed h WHERE h.status <> 'held' GROUP BY h.status;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS api_webhooks_new_holds ON credits_credithold;
CREATE TRIGGER api_webhooks_new_holds
    AFTER INSERT ON credits_credithold REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION api_webhooks_holds_changed();
DROP TRIGGER IF EXISTS api_webhooks_ended_holds ON credits_credithold;
CREATE TRIGGER api_webhooks_ended_holds
    AFTER UPDATE ON credits_credithold REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION api_webhooks_holds_changed();
