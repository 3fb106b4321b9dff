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
    BEFORE UPDATE OF balance, last_seq, last_transaction_at ON credits_creditaccount
    FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION credits_refuse_derived_change(
        'An account''s balance is its newest transaction''s balance_after: write a transaction');

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
    ELSIF EXISTS (SELECT FROM added WHERE balance <> 0 OR last_seq <> 0) THEN
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
    IF NEW.amount > 0 AND NOT EXISTS (
        SELECT FROM credits_creditlot l WHERE l.allocation_id = NEW.id AND l.amount = NEW.amount
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
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS credits_transaction_rows_agree ON credits_credittransaction;
CREATE CONSTRAINT TRIGGER credits_transaction_rows_agree
    AFTER INSERT ON credits_credittransaction
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION credits_check_transaction_rows();

