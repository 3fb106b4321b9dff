-- The database itself keeps the ledger append-only, whoever connects: transactions and
-- lot usages can be neither updated nor deleted, and of a lot only `remaining` may change.
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

-- At commit, an account's balance and last_seq are its newest transaction's balance_after
-- and seq: a plain UPDATE of the balance, or a transaction written past the account,
-- fails the commit. Checked once per account row written (an adjustment writes one) and
-- once per transaction.
CREATE OR REPLACE FUNCTION credits_check_account_balance() RETURNS trigger AS $$
DECLARE
    account_id bigint;
    account credits_creditaccount%ROWTYPE;
    newest record;
BEGIN
    IF TG_TABLE_NAME = 'credits_creditaccount' THEN
        account_id := NEW.id;
    ELSE
        account_id := NEW.account_id;
    END IF;
    SELECT * INTO account FROM credits_creditaccount a WHERE a.id = account_id;
    SELECT t.seq, t.balance_after INTO newest FROM credits_credittransaction t
    WHERE t.account_id = account.id ORDER BY t.seq DESC LIMIT 1;
    IF (account.last_seq, account.balance)
       IS DISTINCT FROM (COALESCE(newest.seq, 0), COALESCE(newest.balance_after, 0)) THEN
        RAISE EXCEPTION 'Account %: balance % at seq % is not its newest transaction''s'
                        ' (% at seq %)', account.id, account.balance, account.last_seq,
                        newest.balance_after, newest.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_account_balance_is_the_ledgers ON credits_creditaccount;
CREATE CONSTRAINT TRIGGER credits_account_balance_is_the_ledgers
    AFTER INSERT OR UPDATE OF balance, last_seq ON credits_creditaccount
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_check_account_balance();
DROP TRIGGER IF EXISTS credits_transaction_moves_its_account ON credits_credittransaction;
CREATE CONSTRAINT TRIGGER credits_transaction_moves_its_account
    AFTER INSERT ON credits_credittransaction
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_check_account_balance();

-- At commit, what remains of a lot is its amount less what its usages took.
CREATE OR REPLACE FUNCTION credits_check_lot_remaining() RETURNS trigger AS $$
DECLARE
    lot_id bigint;
    lot credits_creditlot%ROWTYPE;
    taken numeric;
BEGIN
    IF TG_TABLE_NAME = 'credits_creditlot' THEN
        lot_id := NEW.id;
    ELSE
        lot_id := NEW.lot_id;
    END IF;
    SELECT * INTO lot FROM credits_creditlot l WHERE l.id = lot_id;
    SELECT COALESCE(SUM(u.amount), 0) INTO taken FROM credits_creditlotusage u
    WHERE u.lot_id = lot.id;
    IF lot.remaining <> lot.amount - taken THEN
        RAISE EXCEPTION 'Lot %: % remain, but its amount % less what its usages took is %',
                        lot.id, lot.remaining, lot.amount, lot.amount - taken
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_lot_remaining_is_its_usages ON credits_creditlot;
CREATE CONSTRAINT TRIGGER credits_lot_remaining_is_its_usages
    AFTER INSERT OR UPDATE OF remaining ON credits_creditlot
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_check_lot_remaining();
DROP TRIGGER IF EXISTS credits_usage_takes_from_its_lot ON credits_creditlotusage;
CREATE CONSTRAINT TRIGGER credits_usage_takes_from_its_lot
    AFTER INSERT ON credits_creditlotusage
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_check_lot_remaining();
