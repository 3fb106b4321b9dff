-- credits_post_adjustment: one adjustment (an addition or a deduction) in one round trip.
--
-- The account lock, the replay of an idempotency key, the checks, the ledger row, its lot
-- or its takes from lots, the account and the notifications. The account lock is then held
-- only while the database works, never while the client does (docs/performance.md).
-- credits.services calls it with named parameters after validating the input and building
-- the notification texts. It changes nothing when it answers anything but 'ok':
--
-- 'replay'       transaction_id was recorded under the key (the caller compares content);
-- 'past_date'    p_expires_on is before the space's today at the adjustment's moment;
-- 'due'          lots whose time is up wait to be expired (the caller expires them with
--                expire_due_lots.sql, then calls again in the same transaction);
-- 'insufficient' balance is what the account has available (its balance less what its
--                holds earmark), less than the deduction;
-- 'limit'        a charge of a company on behalf of a member (p_on_behalf_of) would take
--                the member past the month's limit; balance is what is left of it;
-- 'not_member'   p_on_behalf_of is not a member of the account's company.
--
-- 'due' also covers holds whose expires_at has passed (the caller expires them first).
--
-- The moment (docs/ledger.md, "Clock"): p_now is the caller's reading of the app's clock,
-- moved on to the account's newest transaction if it is earlier.
--
-- Every function here is planned once per connection (SET plan_cache_mode =
-- force_generic_plan): left to choose, PostgreSQL planned their array-parameter queries
-- afresh on every call (custom plans looked cheaper), which cost more than running them
-- (notifications_write: 0.27 ms a call against 0.11 ms; docs/performance.md, round six).
--
-- This file is the function: change it here and add a migration that applies it again
-- (credits.ledger_sql.apply). Applying it twice changes nothing.

-- The order credits are taken in (docs/ledger.md, "Deduction order"), the one home of that
-- rule: earliest-expiring lots first, never-expiring last, then oldest, then by id (the
-- order of the lot_open_by_expiry index), read only as far as the amount needs (a customer
-- may hold hundreds of open lots; a deduction takes from one or two). Each turn takes the
-- first open lot; a lot emptied by one turn is no longer open. The takes are usages of
-- p_transaction_id, or, for a hold, its shares of the lots (p_hold_id); either takes from
-- the lot (triggers in append_only.sql). The caller has locked the account and checked
-- that it has the credits available.
CREATE OR REPLACE FUNCTION credits_take_in_order(
    p_account_id bigint, p_amount numeric, p_transaction_id bigint DEFAULT NULL,
    p_hold_id bigint DEFAULT NULL
) RETURNS void AS $$
DECLARE
    lot record;
    need numeric := p_amount;
    take numeric;
BEGIN
    LOOP
        SELECT l.id, l.remaining INTO lot FROM credits_creditlot l
        WHERE l.account_id = p_account_id AND l.remaining > 0
        ORDER BY l.expires_on ASC NULLS LAST, l.created_at, l.id
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        take := LEAST(lot.remaining, need);
        IF p_hold_id IS NULL THEN
            INSERT INTO credits_creditlotusage (transaction_id, lot_id, amount)
            VALUES (p_transaction_id, lot.id, take);
        ELSE
            INSERT INTO credits_creditholdlot (hold_id, lot_id, amount)
            VALUES (p_hold_id, lot.id, take);
        END IF;
        need := need - take;
        EXIT WHEN need = 0;
    END LOOP;
    IF need > 0 THEN  -- the account said there was enough: the lots disagree
        RAISE EXCEPTION 'Account %: lots hold % less than its balance', p_account_id, need;
    END IF;
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- What a member has spent of a company's credits in the calendar month (the space's zone)
-- of p_moment, net of refunds and reversals: each refund or reversal counts in the month
-- of the charge it gives back. The monthly limit's one rule: the adjustment checks it and
-- credits.selectors.get_monthly_limit_left reads it.
CREATE OR REPLACE FUNCTION credits_month_spent(
    p_account_id bigint, p_member_id bigint, p_moment timestamptz, p_zone text
) RETURNS numeric AS $$
DECLARE
    month_start timestamptz := date_trunc('month', p_moment AT TIME ZONE p_zone) AT TIME ZONE p_zone;
    spent numeric;
BEGIN
    SELECT COALESCE(-SUM(t.amount), 0) INTO spent
    FROM credits_credittransaction t
    LEFT JOIN credits_credittransaction c ON c.id = COALESCE(t.refunded_charge_id, t.reverses_id)
    WHERE t.account_id = p_account_id AND t.on_behalf_of_id = p_member_id
      AND t.created_at >= month_start AND COALESCE(c.created_at, t.created_at) >= month_start;
    RETURN spent;
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;

-- The function as it was before it took p_addresses, and before p_on_behalf_of and
-- p_batch_id (another signature would otherwise stay beside this one).
DROP FUNCTION IF EXISTS credits_post_adjustment(
    bigint, varchar, numeric, date, varchar, bigint, varchar, timestamptz, text, varchar,
    bigint[], varchar[], text[], varchar, varchar, varchar[]);
DROP FUNCTION IF EXISTS credits_post_adjustment(
    bigint, varchar, numeric, date, varchar, bigint, varchar, timestamptz, text, varchar,
    bigint[], varchar[], text[], varchar, varchar, bigint, bigint);
DROP FUNCTION IF EXISTS credits_post_adjustment(
    bigint, varchar, numeric, date, varchar, bigint, varchar, timestamptz, text, varchar,
    bigint[], varchar[], text[], varchar, varchar);

CREATE OR REPLACE FUNCTION credits_post_adjustment(
    p_account_id bigint, p_kind varchar, p_amount numeric, p_expires_on date,
    p_memo varchar, p_actor_id bigint, p_key varchar, p_now timestamptz, p_zone text,
    p_notification_kind varchar, p_recipients bigint[], p_subjects varchar[], p_bodies text[],
    p_link varchar, p_reference_prefix varchar, p_addresses varchar[] DEFAULT NULL,
    p_on_behalf_of bigint DEFAULT NULL, p_batch_id bigint DEFAULT NULL,
    OUT status text, OUT account_pk bigint, OUT transaction_id bigint, OUT seq bigint,
    OUT balance numeric, OUT created_at timestamptz, OUT emails bigint[]
) AS $$
DECLARE
    account credits_creditaccount%ROWTYPE;
    today date;
    member_limit numeric;
BEGIN
    -- Lock the customer's account (every customer has one from the start).
    SELECT * INTO account FROM credits_creditaccount a WHERE a.id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No credit account %', p_account_id;
    END IF;

    account_pk := account.id;
    -- The adjustment's moment: never before the account's newest transaction.
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
    IF p_expires_on < today THEN
        status := 'past_date';
        RETURN;
    END IF;
    -- Holds whose time is up wait too (the account knows the soonest: no query).
    IF account.next_hold_expires_at <= created_at OR EXISTS (
        SELECT FROM credits_creditlot l
        WHERE l.account_id = account.id AND l.remaining > 0 AND l.expires_on < today
    ) THEN
        status := 'due';
        RETURN;
    END IF;
    IF account.balance - account.held + p_amount < 0 THEN
        status := 'insufficient';
        balance := account.balance - account.held;
        RETURN;
    END IF;
    IF p_on_behalf_of IS NOT NULL THEN
        SELECT m.monthly_credit_limit INTO member_limit FROM customers_companymembership m
        WHERE m.company_id = account.company_id AND m.user_id = p_on_behalf_of;
        IF NOT FOUND THEN
            status := 'not_member';
            RETURN;
        END IF;
        IF member_limit IS NOT NULL THEN
            balance := GREATEST(member_limit - credits_month_spent(
                account.id, p_on_behalf_of, created_at, p_zone), 0);
            IF balance + p_amount < 0 THEN
                status := 'limit';
                RETURN;
            END IF;
        END IF;
    END IF;

    seq := account.last_seq + 1;
    balance := account.balance + p_amount;
    -- The account moves on with its new transaction (a trigger in append_only.sql).
    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, actor_id, created_at, expires_on,
         idempotency_key, on_behalf_of_id, batch_id)
    VALUES (account.id, seq, p_kind, p_amount, balance, p_memo, p_actor_id, created_at,
            p_expires_on, p_key, p_on_behalf_of, p_batch_id)
    RETURNING id INTO transaction_id;

    IF p_amount > 0 THEN
        INSERT INTO credits_creditlot (account_id, allocation_id, amount, remaining, expires_on,
                                       created_at)
        VALUES (account.id, transaction_id, p_amount, p_amount, p_expires_on, created_at);
    ELSE
        PERFORM credits_take_in_order(account.id, -p_amount, p_transaction_id => transaction_id);
    END IF;

    -- One notification per recipient, through notifications' one writer (which also
    -- knows whose emails about this kind are turned off).
    SELECT w.emails INTO emails FROM notifications_write(
        p_kind => p_notification_kind, p_created_at => created_at,
        p_recipients => p_recipients, p_subjects => p_subjects, p_bodies => p_bodies,
        p_links => array_fill(p_link, ARRAY[cardinality(p_recipients)]),
        p_balances => array_fill(balance, ARRAY[cardinality(p_recipients)]),
        p_references => array_fill(p_reference_prefix || transaction_id,
                                   ARRAY[cardinality(p_recipients)]),
        p_addresses => p_addresses) w;
    status := 'ok';
END;
$$ LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan;
