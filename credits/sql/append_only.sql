-- The database itself keeps the ledger append-only, whoever connects: transactions and
-- lot usages can be neither updated nor deleted, accounts and lots are never deleted, and
-- of a lot only `remaining` may change (and only as its usages say, below).
--
-- This file is the rule: change it here and add a migration that applies it again
-- (credits.ledger_sql.apply). Applying it twice changes nothing.

CREATE OR REPLACE FUNCTION credits_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'The credit ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS credits_transaction_append_only ON credits_credittransaction;
CREATE TRIGGER credits_transaction_append_only
    BEFORE UPDATE OR DELETE ON credits_credittransaction
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_lotusage_append_only ON credits_creditlotusage;
CREATE TRIGGER credits_lotusage_append_only
    BEFORE UPDATE OR DELETE ON credits_creditlotusage
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_account_no_delete ON credits_creditaccount;
CREATE TRIGGER credits_account_no_delete
    BEFORE DELETE ON credits_creditaccount
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_lot_no_delete ON credits_creditlot;
CREATE TRIGGER credits_lot_no_delete
    BEFORE DELETE ON credits_creditlot
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();

CREATE OR REPLACE FUNCTION credits_lot_only_remaining_changes() RETURNS trigger AS $$
BEGIN
    IF (NEW.id, NEW.account_id, NEW.allocation_id, NEW.amount, NEW.expires_on, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.account_id, OLD.allocation_id, OLD.amount, OLD.expires_on, OLD.created_at) THEN
        RAISE EXCEPTION 'Only the remaining credits of a lot may change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_lot_only_remaining ON credits_creditlot;
-- Only for an UPDATE that names a protected column: one that does not name a column
-- cannot change it, and a deduction or expiry then pays no PL/pgSQL call per lot.
CREATE TRIGGER credits_lot_only_remaining
    BEFORE UPDATE OF id, account_id, allocation_id, amount, expires_on, created_at
    ON credits_creditlot
    FOR EACH ROW EXECUTE FUNCTION credits_lot_only_remaining_changes();

-- No TRUNCATE of a ledger table (a statement trigger: TRUNCATE fires no row trigger).
-- Only a superuser can step around this (session_replication_role = replica), as the
-- test suite's flush does; the application's role owns no ledger table and cannot.
DROP TRIGGER IF EXISTS credits_account_no_truncate ON credits_creditaccount;
CREATE TRIGGER credits_account_no_truncate
    BEFORE TRUNCATE ON credits_creditaccount
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_transaction_no_truncate ON credits_credittransaction;
CREATE TRIGGER credits_transaction_no_truncate
    BEFORE TRUNCATE ON credits_credittransaction
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_lot_no_truncate ON credits_creditlot;
CREATE TRIGGER credits_lot_no_truncate
    BEFORE TRUNCATE ON credits_creditlot
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_lotusage_no_truncate ON credits_creditlotusage;
CREATE TRIGGER credits_lotusage_no_truncate
    BEFORE TRUNCATE ON credits_creditlotusage
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();

-- What the ledger derives, the database derives: a lot's `remaining` follows the usages
-- written against it, and an account's balance, last_seq and last_transaction_at follow
-- the transactions written to it. The ledger's code writes only transactions, lots and
-- usages; nothing else (no plain UPDATE, whoever connects) may set the derived columns.
-- Each trigger runs once per statement, with the rows the statement wrote, so its cost
-- does not grow with a lot's or an account's history.

-- A plain UPDATE of a lot's remaining or an account's balance is refused: only these
-- triggers set them (pg_trigger_depth() is 0 outside any trigger; the WHEN clause spares
-- the triggers' own updates a function call).
CREATE OR REPLACE FUNCTION credits_refuse_derived_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_lot_remaining_follows_usages ON credits_creditlot;
CREATE TRIGGER credits_lot_remaining_follows_usages
    BEFORE UPDATE OF remaining ON credits_creditlot
    FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION credits_refuse_derived_change(
        'A lot''s remaining is its amount less what its usages took: write a usage');
DROP TRIGGER IF EXISTS credits_account_follows_its_transactions ON credits_creditaccount;
CREATE TRIGGER credits_account_follows_its_transactions
    BEFORE UPDATE OF balance, last_seq, last_transaction_at, held, next_hold_expires_at
    ON credits_creditaccount
    FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION credits_refuse_derived_change(
        'An account''s balance is its newest transaction''s balance_after and its held'
        ' what its holds earmark: write a transaction or a hold');

-- Usages written: each lot gives what they took (the CHECK remaining >= 0 refuses more).
CREATE OR REPLACE FUNCTION credits_take_from_lots() RETURNS trigger AS $$
BEGIN
    UPDATE credits_creditlot l SET remaining = l.remaining - t.amount
    FROM (SELECT lot_id, SUM(amount) AS amount FROM taken GROUP BY lot_id) t
    WHERE l.id = t.lot_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_usages_take_from_lots ON credits_creditlotusage;
CREATE TRIGGER credits_usages_take_from_lots
    AFTER INSERT ON credits_creditlotusage REFERENCING NEW TABLE AS taken
    FOR EACH STATEMENT EXECUTE FUNCTION credits_take_from_lots();

-- A new lot holds all of its amount; a new account holds nothing yet.
CREATE OR REPLACE FUNCTION credits_check_new_rows() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'credits_creditlot' THEN
        IF EXISTS (SELECT FROM added WHERE remaining <> amount) THEN
            RAISE EXCEPTION 'A new lot''s remaining is its amount'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF EXISTS (SELECT FROM added WHERE balance <> 0 OR last_seq <> 0 OR held <> 0
                  OR next_hold_expires_at IS NOT NULL) THEN
        RAISE EXCEPTION 'A new account starts empty: its balance comes from transactions'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_new_lots_are_full ON credits_creditlot;
CREATE TRIGGER credits_new_lots_are_full
    AFTER INSERT ON credits_creditlot REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION credits_check_new_rows();
DROP TRIGGER IF EXISTS credits_new_accounts_are_empty ON credits_creditaccount;
CREATE TRIGGER credits_new_accounts_are_empty
    AFTER INSERT ON credits_creditaccount REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION credits_check_new_rows();

-- Transactions written: together they continue their account's chain (seq last_seq + 1,
-- 2, ... without a gap, the newest balance_after the old balance plus their amounts), and
-- the account moves on to the newest of them, in one statement.
CREATE OR REPLACE FUNCTION credits_accounts_follow_transactions() RETURNS trigger AS $$
DECLARE
    accounts integer;
    moved integer;
BEGIN
    UPDATE credits_creditaccount a
    SET balance = w.newest_balance, last_seq = w.last_seq,
        last_transaction_at = GREATEST(a.last_transaction_at, w.latest)
    FROM (SELECT account_id, COUNT(*) AS rows, MIN(seq) AS first_seq, MAX(seq) AS last_seq,
                 SUM(amount) AS amount, MAX(created_at) AS latest,
                 (array_agg(balance_after ORDER BY seq DESC))[1] AS newest_balance
          FROM written GROUP BY account_id) w
    WHERE a.id = w.account_id AND w.first_seq = a.last_seq + 1
      AND w.last_seq = a.last_seq + w.rows AND w.newest_balance = a.balance + w.amount;
    GET DIAGNOSTICS moved = ROW_COUNT;
    SELECT COUNT(DISTINCT account_id) INTO accounts FROM written;
    IF moved <> accounts THEN
        RAISE EXCEPTION 'A transaction written does not continue its account''s chain'
                        ' (seq and balance_after)'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_transactions_move_accounts ON credits_credittransaction;
CREATE TRIGGER credits_transactions_move_accounts
    AFTER INSERT ON credits_credittransaction REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION credits_accounts_follow_transactions();

-- At commit (once the rows a change writes after its transaction are there): an addition
-- has its lot of the same amount, a deduction or expiry has usages that add up to it.
-- Checked once per transaction written, by the unique indexes on lot.allocation_id and
-- (usage.transaction, lot): a cost that does not grow with history.
CREATE OR REPLACE FUNCTION credits_check_transaction_rows() RETURNS trigger AS $$
BEGIN
    -- An addition's lot; or the lots a transfer in, refund or reversal created (one per
    -- expiration date, or a grace lot) and the credits it gave back to lots.
    IF NEW.amount > 0 AND NOT EXISTS (
        SELECT FROM credits_creditlot l WHERE l.allocation_id = NEW.id AND l.amount = NEW.amount
    ) AND NEW.amount IS DISTINCT FROM (
        (SELECT COALESCE(SUM(l.amount), 0) FROM credits_creditlot l WHERE l.allocation_id = NEW.id)
        + (SELECT COALESCE(SUM(r.amount), 0) FROM credits_creditlotreturn r
           WHERE r.transaction_id = NEW.id AND r.grace_lot_id IS NULL)
    ) THEN
        RAISE EXCEPTION 'Transaction %: an addition of % has no lot of that amount',
                        NEW.id, NEW.amount USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.amount < 0 AND -NEW.amount IS DISTINCT FROM (
        SELECT SUM(u.amount) FROM credits_creditlotusage u WHERE u.transaction_id = NEW.id
    ) THEN
        RAISE EXCEPTION 'Transaction %: a deduction of % is not what its usages took',
                        NEW.id, -NEW.amount USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- What a refund or reversal gives back to a lot, with the earlier ones of the same
    -- charge, never exceeds what the charge took from that lot.
    IF NEW.amount > 0 AND (NEW.refunded_charge_id IS NOT NULL OR NEW.reverses_id IS NOT NULL)
       AND EXISTS (
        SELECT FROM credits_creditlotreturn r
        JOIN credits_credittransaction t ON t.id = r.transaction_id
        LEFT JOIN credits_creditlotusage u
            ON u.transaction_id = COALESCE(NEW.refunded_charge_id, NEW.reverses_id)
           AND u.lot_id = r.lot_id
        WHERE r.lot_id IN (SELECT r2.lot_id FROM credits_creditlotreturn r2
                           WHERE r2.transaction_id = NEW.id)
          AND COALESCE(t.refunded_charge_id, t.reverses_id)
              = COALESCE(NEW.refunded_charge_id, NEW.reverses_id)
        GROUP BY r.lot_id, u.amount
        HAVING SUM(r.amount) > COALESCE(u.amount, 0)
    ) THEN
        RAISE EXCEPTION 'Transaction %: gives a lot back more than its charge took from it',
                        NEW.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_transaction_rows_agree ON credits_credittransaction;
CREATE CONSTRAINT TRIGGER credits_transaction_rows_agree
    AFTER INSERT ON credits_credittransaction
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_check_transaction_rows();


-- The ledger's other verbs (docs/ledger.md, "The other verbs"): their rows stay as
-- protected as the ones above.

-- Gifts back to lots and holds' shares of lots are never edited or deleted; holds and
-- batches are never deleted; no TRUNCATE of any of them.
DROP TRIGGER IF EXISTS credits_lotreturn_append_only ON credits_creditlotreturn;
CREATE TRIGGER credits_lotreturn_append_only
    BEFORE UPDATE OR DELETE ON credits_creditlotreturn
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_holdlot_append_only ON credits_creditholdlot;
CREATE TRIGGER credits_holdlot_append_only
    BEFORE UPDATE OR DELETE ON credits_creditholdlot
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_hold_no_delete ON credits_credithold;
CREATE TRIGGER credits_hold_no_delete
    BEFORE DELETE ON credits_credithold
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_batch_no_delete ON credits_creditbatch;
CREATE TRIGGER credits_batch_no_delete
    BEFORE DELETE ON credits_creditbatch
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_lotreturn_no_truncate ON credits_creditlotreturn;
CREATE TRIGGER credits_lotreturn_no_truncate
    BEFORE TRUNCATE ON credits_creditlotreturn
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_holdlot_no_truncate ON credits_creditholdlot;
CREATE TRIGGER credits_holdlot_no_truncate
    BEFORE TRUNCATE ON credits_creditholdlot
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_hold_no_truncate ON credits_credithold;
CREATE TRIGGER credits_hold_no_truncate
    BEFORE TRUNCATE ON credits_credithold
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();
DROP TRIGGER IF EXISTS credits_batch_no_truncate ON credits_creditbatch;
CREATE TRIGGER credits_batch_no_truncate
    BEFORE TRUNCATE ON credits_creditbatch
    FOR EACH STATEMENT EXECUTE FUNCTION credits_refuse_change();

-- A hold changes once: from held to captured, released or expired (its status, captured
-- and closed_at); a finished hold never changes again, and nothing else of it does.
CREATE OR REPLACE FUNCTION credits_hold_changes_once() RETURNS trigger AS $$
BEGIN
    IF OLD.status <> 'held' OR NEW.status = 'held'
       OR (NEW.id, NEW.account_id, NEW.amount, NEW.expires_at, NEW.memo, NEW.actor_id,
           NEW.created_at, NEW.idempotency_key)
          IS DISTINCT FROM
          (OLD.id, OLD.account_id, OLD.amount, OLD.expires_at, OLD.memo, OLD.actor_id,
           OLD.created_at, OLD.idempotency_key) THEN
        RAISE EXCEPTION 'A hold only ends, once: held to captured, released or expired'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_hold_ends_once ON credits_credithold;
CREATE TRIGGER credits_hold_ends_once
    BEFORE UPDATE ON credits_credithold
    FOR EACH ROW EXECUTE FUNCTION credits_hold_changes_once();

-- Gifts back written: each lot gets back what they gave (the CHECK remaining <= amount
-- refuses more); a share that went into a grace lot is in that lot's amount already.
CREATE OR REPLACE FUNCTION credits_give_back_to_lots() RETURNS trigger AS $$
BEGIN
    UPDATE credits_creditlot l SET remaining = l.remaining + g.amount
    FROM (SELECT lot_id, SUM(amount) AS amount FROM given WHERE grace_lot_id IS NULL
          GROUP BY lot_id) g
    WHERE l.id = g.lot_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_returns_give_back_to_lots ON credits_creditlotreturn;
CREATE TRIGGER credits_returns_give_back_to_lots
    AFTER INSERT ON credits_creditlotreturn REFERENCING NEW TABLE AS given
    FOR EACH STATEMENT EXECUTE FUNCTION credits_give_back_to_lots();

-- A hold's shares written take from their lots, like usages.
DROP TRIGGER IF EXISTS credits_holdlots_take_from_lots ON credits_creditholdlot;
CREATE TRIGGER credits_holdlots_take_from_lots
    AFTER INSERT ON credits_creditholdlot REFERENCING NEW TABLE AS taken
    FOR EACH STATEMENT EXECUTE FUNCTION credits_take_from_lots();

-- Holds written or ended: an account's held is what its active holds earmark and
-- next_hold_expires_at the soonest of their ends; a hold that ends gives its shares back
-- to their lots (a capture's booking then takes what it charges from them).
CREATE OR REPLACE FUNCTION credits_accounts_follow_holds() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE credits_creditlot l SET remaining = l.remaining + s.amount
        FROM (SELECT hl.lot_id, SUM(hl.amount) AS amount
              FROM changed e JOIN credits_creditholdlot hl ON hl.hold_id = e.id
              WHERE e.status <> 'held' GROUP BY hl.lot_id) s
        WHERE l.id = s.lot_id;
    END IF;
    -- By the holds written or ended, not by all of an account's holds: held moves by
    -- their amounts, and the soonest end is one probe of the hold_active index.
    UPDATE credits_creditaccount a
    SET held = a.held + CASE WHEN TG_OP = 'INSERT' THEN c.amount ELSE -c.amount END,
        next_hold_expires_at = (
            SELECT x.expires_at FROM credits_credithold x
            WHERE x.account_id = c.account_id AND x.status = 'held'
            ORDER BY x.expires_at LIMIT 1)
    FROM (SELECT account_id,
                 SUM(CASE WHEN TG_OP = 'UPDATE' OR status = 'held' THEN amount ELSE 0 END)
                     AS amount
          FROM changed GROUP BY account_id) c
    WHERE a.id = c.account_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_new_holds_move_accounts ON credits_credithold;
CREATE TRIGGER credits_new_holds_move_accounts
    AFTER INSERT ON credits_credithold REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION credits_accounts_follow_holds();
DROP TRIGGER IF EXISTS credits_ended_holds_move_accounts ON credits_credithold;
CREATE TRIGGER credits_ended_holds_move_accounts
    AFTER UPDATE ON credits_credithold REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION credits_accounts_follow_holds();

-- Relations checked as a row is written (only rows that have one: a plain adjustment pays
-- no call): a reversal undoes an admin's addition or deduction of its own account, never
-- a reversal, with the opposite amount at most; a refund gives back a booking of its own
-- account, and with the earlier refunds never more than it; a transfer in receives a
-- transfer out of another account, of the same amount; a booking captures a hold of its
-- own account, at most its amount.
CREATE OR REPLACE FUNCTION credits_check_relations() RETURNS trigger AS $$
DECLARE
    other credits_credittransaction%ROWTYPE;
    refunded numeric;
BEGIN
    IF NEW.reverses_id IS NOT NULL THEN
        SELECT * INTO other FROM credits_credittransaction t WHERE t.id = NEW.reverses_id;
        IF other.account_id <> NEW.account_id OR other.kind NOT IN ('admin_allocation', 'admin_charge')
           OR sign(other.amount) = sign(NEW.amount) OR abs(NEW.amount) > abs(other.amount) THEN
            RAISE EXCEPTION 'A reversal undoes an admin''s addition or deduction of its account'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    IF NEW.refunded_charge_id IS NOT NULL THEN
        SELECT * INTO other FROM credits_credittransaction t
        WHERE t.id = NEW.refunded_charge_id;
        SELECT COALESCE(SUM(t.amount), 0) INTO refunded FROM credits_credittransaction t
        WHERE t.refunded_charge_id = other.id;
        IF other.account_id <> NEW.account_id OR other.kind <> 'booking'
           OR refunded + NEW.amount > -other.amount THEN
            RAISE EXCEPTION 'The refunds of a charge never add up to more than it'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    IF NEW.transfer_out_id IS NOT NULL THEN
        SELECT * INTO other FROM credits_credittransaction t WHERE t.id = NEW.transfer_out_id;
        IF other.kind <> 'transfer_out' OR other.account_id = NEW.account_id
           OR other.amount <> -NEW.amount THEN
            RAISE EXCEPTION 'A transfer in receives another account''s transfer out'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    IF NEW.hold_id IS NOT NULL AND NOT EXISTS (
        SELECT FROM credits_credithold h
        WHERE h.id = NEW.hold_id AND h.account_id = NEW.account_id AND h.amount >= -NEW.amount
    ) THEN
        RAISE EXCEPTION 'A booking captures a hold of its account, at most its amount'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_transaction_relations ON credits_credittransaction;
CREATE TRIGGER credits_transaction_relations
    BEFORE INSERT ON credits_credittransaction
    FOR EACH ROW WHEN (NEW.reverses_id IS NOT NULL OR NEW.refunded_charge_id IS NOT NULL
                       OR NEW.transfer_out_id IS NOT NULL OR NEW.hold_id IS NOT NULL)
    EXECUTE FUNCTION credits_check_relations();

-- At commit: a hold's shares add up to its amount, and a captured hold has its booking of
-- the captured amount.
CREATE OR REPLACE FUNCTION credits_check_hold_rows() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.amount IS DISTINCT FROM (
        SELECT SUM(hl.amount) FROM credits_creditholdlot hl WHERE hl.hold_id = NEW.id
    ) THEN
        RAISE EXCEPTION 'Hold %: its shares of lots are not its amount %', NEW.id, NEW.amount
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status = 'captured' AND NOT EXISTS (
        SELECT FROM credits_credittransaction t
        WHERE t.hold_id = NEW.id AND t.amount = -NEW.captured
    ) THEN
        RAISE EXCEPTION 'Hold %: captured without its booking of %', NEW.id, NEW.captured
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_hold_rows_agree ON credits_credithold;
CREATE CONSTRAINT TRIGGER credits_hold_rows_agree
    AFTER INSERT OR UPDATE ON credits_credithold
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_check_hold_rows();
