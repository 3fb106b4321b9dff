-- The ledger's other verbs, each one function and one round trip, like the adjustment
-- (post_adjustment.sql, whose order of taking credits, credits_take_in_order, they share):
-- reverse, refund, hold, capture, release and transfer. docs/ledger.md, "The other verbs".
--
-- Each locks the account (a transfer its two accounts, in id order), fixes the moment
-- (the caller's clock, never before an account's newest transaction), replays an
-- idempotency key, and answers 'due' when lots or holds whose time is up wait to be
-- expired (the caller expires them in a transaction and calls again in it). Any answer
-- but 'ok' means nothing was written; the caller turns it into an exception. The caller
-- passes the notification texts (amounts it knows before the call; where the amount is
-- the ledger's to say, p_expected is what the texts say, and the answer is 'changed',
-- with the amount, when the ledger says otherwise).
--
-- This file is the functions: change it here and add a migration that applies it again
-- (credits.ledger_sql.apply). Applying it twice changes nothing.
--
-- Every function here is planned once per connection (SET plan_cache_mode =
-- force_generic_plan): left to choose, PostgreSQL planned their array-parameter queries
-- afresh on every call (custom plans looked cheaper), which cost more than running them
-- (notifications_write: 0.27 ms a call against 0.11 ms; docs/performance.md, round six).

-- Whether the account has lots or holds whose time is up at p_moment.
CREATE OR REPLACE FUNCTION credits_is_due(
    p_account credits_creditaccount, p_moment timestamptz, p_today date
) RETURNS boolean AS $$
BEGIN
    RETURN COALESCE(p_account.next_hold_expires_at <= p_moment, false) OR EXISTS (
        SELECT FROM credits_creditlot l
        WHERE l.account_id = p_account.id AND l.remaining > 0 AND l.expires_on < p_today);
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- Give shares (lot, amount) back to the lots they were taken from, for p_transaction_id.
-- A share whose lot's date has passed goes into one new lot of the transaction that
-- expires on p_grace_until, never into credits that expire at once.
CREATE OR REPLACE FUNCTION credits_give_back(
    p_transaction_id bigint, p_account_id bigint, p_lots bigint[], p_amounts numeric[],
    p_today date, p_grace_until date, p_created_at timestamptz
) RETURNS void AS $$
DECLARE
    expired numeric;
    grace bigint;
BEGIN
    SELECT SUM(s.amount) INTO expired
    FROM unnest(p_lots, p_amounts) AS s(lot_id, amount)
    JOIN credits_creditlot l ON l.id = s.lot_id
    WHERE l.expires_on < p_today;
    IF expired > 0 THEN
        INSERT INTO credits_creditlot
            (account_id, allocation_id, amount, remaining, expires_on, created_at)
        VALUES (p_account_id, p_transaction_id, expired, expired, p_grace_until, p_created_at)
        RETURNING id INTO grace;
    END IF;
    INSERT INTO credits_creditlotreturn (transaction_id, lot_id, amount, grace_lot_id)
    SELECT p_transaction_id, s.lot_id, s.amount,
           CASE WHEN l.expires_on < p_today THEN grace END
    FROM unnest(p_lots, p_amounts) AS s(lot_id, amount)
    JOIN credits_creditlot l ON l.id = s.lot_id;
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- One notification per recipient of a row (reference p_reference) of account
-- p_account_id, through the one writer. Who is told is the caller's to say
-- (credits.notices.who_is_told); a NULL recipient, for a company with no active manager,
-- is an email alone to the company's billing email, read here (the verbs' functions take
-- no addresses, unlike the adjustment's).
-- The function before p_account_id (a new argument makes a second function otherwise).
DROP FUNCTION IF EXISTS credits_notify(
    varchar, timestamptz, bigint[], varchar[], text[], varchar, numeric, varchar);
CREATE OR REPLACE FUNCTION credits_notify(
    p_kind varchar, p_created_at timestamptz, p_recipients bigint[], p_subjects varchar[],
    p_bodies text[], p_link varchar, p_balance numeric, p_reference varchar,
    p_account_id bigint, OUT emails bigint[]
) AS $$
DECLARE
    address varchar;
BEGIN
    emails := '{}';
    IF cardinality(p_recipients) IS NULL OR cardinality(p_recipients) = 0 THEN
        RETURN;
    END IF;
    IF array_position(p_recipients, NULL) IS NOT NULL THEN
        SELECT c.email INTO address
        FROM credits_creditaccount a JOIN customers_company c ON c.id = a.company_id
        WHERE a.id = p_account_id;
    END IF;
    SELECT w.emails INTO emails FROM notifications_write(
        p_kind => p_kind, p_created_at => p_created_at,
        p_recipients => p_recipients, p_subjects => p_subjects, p_bodies => p_bodies,
        p_links => array_fill(p_link, ARRAY[cardinality(p_recipients)]),
        p_balances => array_fill(p_balance, ARRAY[cardinality(p_recipients)]),
        p_references => array_fill(p_reference, ARRAY[cardinality(p_recipients)]),
        p_addresses => array_fill(address, ARRAY[cardinality(p_recipients)])) w;
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- Reverse an admin's addition (take back what remains of its lot) or deduction (give back
-- exactly what it took, to the lots it took it from). Answers, besides 'ok', 'replay' and
-- 'due': 'is_reversal' (a reversal is not reversed), 'not_reversible' (not an admin's
-- addition or deduction), 'reversed' (transaction_id is the reversal), 'nothing_left'
-- (the addition's lot holds nothing now), 'changed' (signed_amount is what it would be).
CREATE OR REPLACE FUNCTION credits_reverse(
    p_transaction_id bigint, p_expected numeric, p_memo varchar, p_actor_id bigint,
    p_key varchar, p_now timestamptz, p_zone text, p_grace_days integer,
    p_notification_kind varchar, p_recipients bigint[], p_subjects varchar[], p_bodies text[],
    p_link varchar, p_reference_prefix varchar,
    OUT status text, OUT account_pk bigint, OUT transaction_id bigint, OUT seq bigint,
    OUT balance numeric, OUT created_at timestamptz, OUT signed_amount numeric,
    OUT emails bigint[]
) AS $$
DECLARE
    account credits_creditaccount%ROWTYPE;
    target credits_credittransaction%ROWTYPE;
    today date;
    lot record;
BEGIN
    SELECT * INTO target FROM credits_credittransaction t WHERE t.id = p_transaction_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No transaction %', p_transaction_id;
    END IF;
    SELECT * INTO account FROM credits_creditaccount a WHERE a.id = target.account_id FOR UPDATE;
    account_pk := account.id;
    created_at := GREATEST(p_now, account.last_transaction_at);
    today := (created_at AT TIME ZONE p_zone)::date;
    balance := account.balance;
    IF p_key IS NOT NULL THEN
        SELECT t.id INTO transaction_id FROM credits_credittransaction t
        WHERE t.account_id = account.id AND t.idempotency_key = p_key;
        IF FOUND THEN
            status := 'replay';
            RETURN;
        END IF;
    END IF;
    IF target.kind = 'reversal' THEN
        status := 'is_reversal';
        RETURN;
    END IF;
    IF target.kind NOT IN ('admin_allocation', 'admin_charge') THEN
        status := 'not_reversible';
        RETURN;
    END IF;
    SELECT t.id INTO transaction_id FROM credits_credittransaction t
    WHERE t.reverses_id = target.id;
    IF FOUND THEN
        status := 'reversed';
        RETURN;
    END IF;
    IF credits_is_due(account, created_at, today) THEN
        status := 'due';
        RETURN;
    END IF;
    IF target.amount > 0 THEN
        -- What remains of the lot: what holds earmark of it is not in remaining.
        SELECT l.id, l.remaining INTO lot FROM credits_creditlot l
        WHERE l.allocation_id = target.id;
        signed_amount := -lot.remaining;
        IF signed_amount = 0 THEN
            status := 'nothing_left';
            RETURN;
        END IF;
    ELSE
        signed_amount := -target.amount;
    END IF;
    IF p_expected IS DISTINCT FROM signed_amount THEN
        status := 'changed';
        RETURN;
    END IF;

    seq := account.last_seq + 1;
    balance := account.balance + signed_amount;
    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, actor_id, created_at,
         idempotency_key, reverses_id, on_behalf_of_id)
    VALUES (account.id, seq, 'reversal', signed_amount, balance, p_memo, p_actor_id,
            created_at, p_key, target.id, target.on_behalf_of_id)
    RETURNING id INTO transaction_id;
    IF signed_amount < 0 THEN
        INSERT INTO credits_creditlotusage (transaction_id, lot_id, amount)
        VALUES (transaction_id, lot.id, -signed_amount);
    ELSE
        PERFORM credits_give_back(
            transaction_id, account.id,
            ARRAY(SELECT u.lot_id FROM credits_creditlotusage u
                  WHERE u.transaction_id = target.id ORDER BY u.lot_id),
            ARRAY(SELECT u.amount FROM credits_creditlotusage u
                  WHERE u.transaction_id = target.id ORDER BY u.lot_id),
            today, today + p_grace_days, created_at);
    END IF;
    emails := credits_notify(p_notification_kind, created_at, p_recipients, p_subjects,
                             p_bodies, p_link, balance, p_reference_prefix || transaction_id,
                             account.id);
    status := 'ok';
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- Refund a booking, wholly (p_amount NULL: what is not refunded yet) or in part, back to
-- the lots it took the credits from, latest-expiring first. Answers, besides 'ok',
-- 'replay' and 'due': 'not_refundable' (not a booking), 'above' (signed_amount is what is
-- left to refund, 0 when it is all refunded), 'changed' (signed_amount is what it would be).
CREATE OR REPLACE FUNCTION credits_refund(
    p_charge_id bigint, p_amount numeric, p_expected numeric, p_memo varchar,
    p_actor_id bigint, p_key varchar, p_now timestamptz, p_zone text, p_grace_days integer,
    p_notification_kind varchar, p_recipients bigint[], p_subjects varchar[], p_bodies text[],
    p_link varchar, p_reference_prefix varchar,
    OUT status text, OUT account_pk bigint, OUT transaction_id bigint, OUT seq bigint,
    OUT balance numeric, OUT created_at timestamptz, OUT signed_amount numeric,
    OUT emails bigint[]
) AS $$
DECLARE
    account credits_creditaccount%ROWTYPE;
    charge credits_credittransaction%ROWTYPE;
    today date;
    rest numeric;
    lots bigint[];
    shares numeric[];
BEGIN
    SELECT * INTO charge FROM credits_credittransaction t WHERE t.id = p_charge_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No transaction %', p_charge_id;
    END IF;
    SELECT * INTO account FROM credits_creditaccount a WHERE a.id = charge.account_id FOR UPDATE;
    account_pk := account.id;
    created_at := GREATEST(p_now, account.last_transaction_at);
    today := (created_at AT TIME ZONE p_zone)::date;
    balance := account.balance;
    IF p_key IS NOT NULL THEN
        SELECT t.id INTO transaction_id FROM credits_credittransaction t
        WHERE t.account_id = account.id AND t.idempotency_key = p_key;
        IF FOUND THEN
            status := 'replay';
            RETURN;
        END IF;
    END IF;
    IF charge.kind <> 'booking' THEN
        status := 'not_refundable';
        RETURN;
    END IF;
    SELECT -charge.amount - COALESCE(SUM(t.amount), 0) INTO rest
    FROM credits_credittransaction t WHERE t.refunded_charge_id = charge.id;
    signed_amount := COALESCE(p_amount, rest);
    IF rest = 0 OR signed_amount > rest THEN
        status := 'above';
        signed_amount := rest;
        RETURN;
    END IF;
    IF credits_is_due(account, created_at, today) THEN
        status := 'due';
        RETURN;
    END IF;
    IF p_expected IS DISTINCT FROM signed_amount THEN
        status := 'changed';
        RETURN;
    END IF;

    -- What each lot may still get back (taken by the charge, less the earlier refunds'
    -- gifts back to it), latest-expiring first, as far as the refund needs.
    WITH open_share AS (
        SELECT u.lot_id, l.expires_on, l.created_at AS lot_created_at,
               u.amount - COALESCE((
                   SELECT SUM(r.amount) FROM credits_creditlotreturn r
                   JOIN credits_credittransaction t ON t.id = r.transaction_id
                   WHERE t.refunded_charge_id = charge.id AND r.lot_id = u.lot_id), 0) AS open
        FROM credits_creditlotusage u JOIN credits_creditlot l ON l.id = u.lot_id
        WHERE u.transaction_id = charge.id
    ),
    running AS (
        SELECT o.lot_id, o.open,
               SUM(o.open) OVER (ORDER BY o.expires_on DESC NULLS FIRST,
                                 o.lot_created_at DESC, o.lot_id DESC) AS run
        FROM open_share o WHERE o.open > 0
    )
    SELECT array_agg(r.lot_id ORDER BY r.lot_id),
           array_agg(LEAST(r.open, signed_amount - (r.run - r.open)) ORDER BY r.lot_id)
    INTO lots, shares
    FROM running r WHERE r.run - r.open < signed_amount;

    seq := account.last_seq + 1;
    balance := account.balance + signed_amount;
    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, actor_id, created_at,
         idempotency_key, refunded_charge_id, on_behalf_of_id)
    VALUES (account.id, seq, 'refund', signed_amount, balance, p_memo, p_actor_id,
            created_at, p_key, charge.id, charge.on_behalf_of_id)
    RETURNING id INTO transaction_id;
    PERFORM credits_give_back(transaction_id, account.id, lots, shares, today,
                              today + p_grace_days, created_at);
    emails := credits_notify(p_notification_kind, created_at, p_recipients, p_subjects,
                             p_bodies, p_link, balance, p_reference_prefix || transaction_id,
                             account.id);
    status := 'ok';
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- Hold credits until p_expires_at, earliest-expiring first. Answers, besides 'ok',
-- 'replay' (hold_id) and 'due': 'past' (p_expires_at is not after the moment),
-- 'insufficient' (available is what the account has available).
CREATE OR REPLACE FUNCTION credits_hold(
    p_account_id bigint, p_amount numeric, p_expires_at timestamptz, p_memo varchar,
    p_actor_id bigint, p_key varchar, p_now timestamptz, p_zone text,
    p_notification_kind varchar, p_recipients bigint[], p_subjects varchar[], p_bodies text[],
    p_link varchar, p_reference_prefix varchar,
    OUT status text, OUT account_pk bigint, OUT hold_id bigint, OUT available numeric,
    OUT created_at timestamptz, OUT emails bigint[]
) AS $$
DECLARE
    account credits_creditaccount%ROWTYPE;
    today date;
BEGIN
    SELECT * INTO account FROM credits_creditaccount a WHERE a.id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No credit account %', p_account_id;
    END IF;
    account_pk := account.id;
    created_at := GREATEST(p_now, account.last_transaction_at);
    today := (created_at AT TIME ZONE p_zone)::date;
    available := account.balance - account.held;
    IF p_key IS NOT NULL THEN
        SELECT h.id INTO hold_id FROM credits_credithold h
        WHERE h.account_id = account.id AND h.idempotency_key = p_key;
        IF FOUND THEN
            status := 'replay';
            RETURN;
        END IF;
    END IF;
    IF p_expires_at <= created_at THEN
        status := 'past';
        RETURN;
    END IF;
    IF credits_is_due(account, created_at, today) THEN
        status := 'due';
        RETURN;
    END IF;
    IF available < p_amount THEN
        status := 'insufficient';
        RETURN;
    END IF;
    -- The account's held follows its holds (a trigger in append_only.sql).
    INSERT INTO credits_credithold
        (account_id, amount, captured, status, expires_at, memo, actor_id, created_at,
         idempotency_key)
    VALUES (account.id, p_amount, 0, 'held', p_expires_at, p_memo, p_actor_id, created_at,
            p_key)
    RETURNING id INTO hold_id;
    PERFORM credits_take_in_order(account.id, p_amount, p_hold_id => hold_id);
    available := available - p_amount;
    emails := credits_notify(p_notification_kind, created_at, p_recipients, p_subjects,
                             p_bodies, p_link, account.balance, p_reference_prefix || hold_id,
                             account.id);
    status := 'ok';
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- Capture a hold (p_amount NULL: all of it) as a booking; the rest is freed. The booking
-- takes from the hold's lots, earliest-expiring first. Answers, besides 'ok', 'replay'
-- and 'due' (a hold whose time is up is expired by the caller first): 'not_held'
-- (hold_status says what it is), 'above' (more than the hold). freed_past says a freed
-- share went back to a lot whose date has passed (the caller expires it).
CREATE OR REPLACE FUNCTION credits_capture(
    p_hold_id bigint, p_amount numeric, p_memo varchar, p_actor_id bigint, p_key varchar,
    p_now timestamptz, p_zone text,
    p_notification_kind varchar, p_recipients bigint[], p_subjects varchar[], p_bodies text[],
    p_link varchar, p_reference_prefix varchar,
    OUT status text, OUT account_pk bigint, OUT transaction_id bigint, OUT seq bigint,
    OUT balance numeric, OUT created_at timestamptz, OUT hold_status text,
    OUT freed_past boolean, OUT emails bigint[]
) AS $$
DECLARE
    account credits_creditaccount%ROWTYPE;
    hold credits_credithold%ROWTYPE;
    today date;
    moment timestamptz;
    charged numeric;
BEGIN
    SELECT h.account_id INTO account_pk FROM credits_credithold h WHERE h.id = p_hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No hold %', p_hold_id;
    END IF;
    SELECT * INTO account FROM credits_creditaccount a WHERE a.id = account_pk FOR UPDATE;
    SELECT * INTO hold FROM credits_credithold h WHERE h.id = p_hold_id;
    created_at := GREATEST(p_now, account.last_transaction_at);
    moment := created_at;
    today := (created_at AT TIME ZONE p_zone)::date;
    balance := account.balance;
    hold_status := hold.status;
    freed_past := false;
    IF p_key IS NOT NULL THEN
        SELECT t.id INTO transaction_id FROM credits_credittransaction t
        WHERE t.account_id = account.id AND t.idempotency_key = p_key;
        IF FOUND THEN
            status := 'replay';
            RETURN;
        END IF;
    END IF;
    IF credits_is_due(account, created_at, today) THEN
        status := 'due';
        RETURN;
    END IF;
    IF hold.status <> 'held' THEN
        status := 'not_held';
        RETURN;
    END IF;
    charged := COALESCE(p_amount, hold.amount);
    IF charged > hold.amount THEN
        status := 'above';
        RETURN;
    END IF;

    -- The hold ends: its shares go back to their lots and the account's held drops
    -- (triggers in append_only.sql); the booking then takes from those lots.
    UPDATE credits_credithold h SET status = 'captured', captured = charged, closed_at = moment
    WHERE h.id = hold.id;
    hold_status := 'captured';
    seq := account.last_seq + 1;
    balance := account.balance - charged;
    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, actor_id, created_at,
         idempotency_key, hold_id)
    VALUES (account.id, seq, 'booking', -charged, balance, p_memo, p_actor_id, created_at,
            p_key, hold.id)
    RETURNING id INTO transaction_id;
    INSERT INTO credits_creditlotusage (transaction_id, lot_id, amount)
    SELECT transaction_id, s.lot_id, LEAST(s.amount, charged - (s.run - s.amount))
    FROM (SELECT hl.lot_id, hl.amount,
                 SUM(hl.amount) OVER (ORDER BY l.expires_on ASC NULLS LAST, l.created_at,
                                      l.id) AS run
          FROM credits_creditholdlot hl JOIN credits_creditlot l ON l.id = hl.lot_id
          WHERE hl.hold_id = hold.id) s
    WHERE s.run - s.amount < charged;
    freed_past := EXISTS (
        SELECT FROM credits_creditholdlot hl JOIN credits_creditlot l ON l.id = hl.lot_id
        WHERE hl.hold_id = hold.id AND l.expires_on < today AND l.remaining > 0);
    emails := credits_notify(p_notification_kind, created_at, p_recipients, p_subjects,
                             p_bodies, p_link, balance, p_reference_prefix || transaction_id,
                             account.id);
    status := 'ok';
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- Release a hold: its credits are available again. Answers, besides 'ok' and 'due':
-- 'not_held' (hold_status says what it is). freed_past as for a capture.
CREATE OR REPLACE FUNCTION credits_release(
    p_hold_id bigint, p_now timestamptz, p_zone text,
    p_notification_kind varchar, p_recipients bigint[], p_subjects varchar[], p_bodies text[],
    p_link varchar, p_reference_prefix varchar,
    OUT status text, OUT account_pk bigint, OUT hold_status text, OUT created_at timestamptz,
    OUT freed_past boolean, OUT emails bigint[]
) AS $$
DECLARE
    account credits_creditaccount%ROWTYPE;
    hold credits_credithold%ROWTYPE;
    today date;
    moment timestamptz;
BEGIN
    SELECT h.account_id INTO account_pk FROM credits_credithold h WHERE h.id = p_hold_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No hold %', p_hold_id;
    END IF;
    SELECT * INTO account FROM credits_creditaccount a WHERE a.id = account_pk FOR UPDATE;
    SELECT * INTO hold FROM credits_credithold h WHERE h.id = p_hold_id;
    created_at := GREATEST(p_now, account.last_transaction_at);
    moment := created_at;
    today := (created_at AT TIME ZONE p_zone)::date;
    hold_status := hold.status;
    freed_past := false;
    IF credits_is_due(account, created_at, today) THEN
        status := 'due';
        RETURN;
    END IF;
    IF hold.status <> 'held' THEN
        status := 'not_held';
        RETURN;
    END IF;
    UPDATE credits_credithold h SET status = 'released', closed_at = moment
    WHERE h.id = hold.id;
    hold_status := 'released';
    freed_past := EXISTS (
        SELECT FROM credits_creditholdlot hl JOIN credits_creditlot l ON l.id = hl.lot_id
        WHERE hl.hold_id = hold.id AND l.expires_on < today AND l.remaining > 0);
    emails := credits_notify(p_notification_kind, created_at, p_recipients, p_subjects,
                             p_bodies, p_link, account.balance, p_reference_prefix || hold.id,
                             account.id);
    status := 'ok';
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- Transfer credits from one account to another: a transfer_out row taking from the
-- source's lots earliest-expiring first and a transfer_in row adding to the target one
-- lot per expiration date taken, so the credits keep their dates. The two accounts are
-- locked in id order, so transfers at once in both directions never deadlock. Answers,
-- besides 'ok', 'replay' (out_id: the key is the source's) and 'due' (account_pk is the
-- account with something due): 'insufficient' (balance is the source's available).
CREATE OR REPLACE FUNCTION credits_transfer(
    p_source_id bigint, p_target_id bigint, p_amount numeric, p_memo varchar,
    p_actor_id bigint, p_key varchar, p_now timestamptz, p_zone text,
    p_notification_kinds varchar[], p_out_recipients bigint[], p_out_subjects varchar[],
    p_out_bodies text[], p_out_link varchar, p_in_recipients bigint[],
    p_in_subjects varchar[], p_in_bodies text[], p_in_link varchar,
    p_reference_prefix varchar,
    OUT status text, OUT account_pk bigint, OUT out_id bigint, OUT in_id bigint,
    OUT balance numeric, OUT created_at timestamptz, OUT emails bigint[]
) AS $$
DECLARE
    source credits_creditaccount%ROWTYPE;
    target credits_creditaccount%ROWTYPE;
    today date;
    moment timestamptz;
BEGIN
    IF p_source_id = p_target_id THEN
        RAISE EXCEPTION 'A transfer needs two accounts';
    END IF;
    PERFORM FROM credits_creditaccount a WHERE a.id IN (p_source_id, p_target_id)
    ORDER BY a.id FOR UPDATE;
    SELECT * INTO source FROM credits_creditaccount a WHERE a.id = p_source_id;
    SELECT * INTO target FROM credits_creditaccount a WHERE a.id = p_target_id;
    IF source.id IS NULL OR target.id IS NULL THEN
        RAISE EXCEPTION 'No credit account % or %', p_source_id, p_target_id;
    END IF;
    account_pk := source.id;
    created_at := GREATEST(p_now, source.last_transaction_at, target.last_transaction_at);
    moment := created_at;
    today := (created_at AT TIME ZONE p_zone)::date;
    balance := source.balance - source.held;
    IF p_key IS NOT NULL THEN
        SELECT t.id INTO out_id FROM credits_credittransaction t
        WHERE t.account_id = source.id AND t.idempotency_key = p_key;
        IF FOUND THEN
            SELECT t.id INTO in_id FROM credits_credittransaction t
            WHERE t.transfer_out_id = out_id;
            status := 'replay';
            RETURN;
        END IF;
    END IF;
    IF credits_is_due(source, created_at, today) THEN
        status := 'due';
        RETURN;
    END IF;
    IF credits_is_due(target, created_at, today) THEN
        status := 'due';
        account_pk := target.id;
        RETURN;
    END IF;
    IF balance < p_amount THEN
        status := 'insufficient';
        RETURN;
    END IF;

    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, actor_id, created_at,
         idempotency_key)
    VALUES (source.id, source.last_seq + 1, 'transfer_out', -p_amount,
            source.balance - p_amount, p_memo, p_actor_id, created_at, p_key)
    RETURNING id INTO out_id;
    PERFORM credits_take_in_order(source.id, p_amount, p_transaction_id => out_id);
    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, actor_id, created_at,
         transfer_out_id)
    VALUES (target.id, target.last_seq + 1, 'transfer_in', p_amount,
            target.balance + p_amount, p_memo, p_actor_id, created_at, out_id)
    RETURNING id INTO in_id;
    INSERT INTO credits_creditlot
        (account_id, allocation_id, amount, remaining, expires_on, created_at)
    SELECT target.id, in_id, SUM(u.amount), SUM(u.amount), l.expires_on, moment
    FROM credits_creditlotusage u JOIN credits_creditlot l ON l.id = u.lot_id
    WHERE u.transaction_id = out_id
    GROUP BY l.expires_on
    ORDER BY l.expires_on NULLS LAST;
    balance := source.balance - p_amount;
    emails := credits_notify(p_notification_kinds[1], created_at, p_out_recipients,
                             p_out_subjects, p_out_bodies, p_out_link, balance,
                             p_reference_prefix || out_id, source.id)
              || credits_notify(p_notification_kinds[2], created_at, p_in_recipients,
                                p_in_subjects, p_in_bodies, p_in_link,
                                target.balance + p_amount, p_reference_prefix || in_id,
                                target.id);
    status := 'ok';
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;
