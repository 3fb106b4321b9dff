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
