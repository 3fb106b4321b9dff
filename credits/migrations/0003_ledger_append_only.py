"""On PostgreSQL the database itself keeps the ledger append-only: transactions and lot
usages can be neither updated nor deleted, and of a lot only `remaining` may change."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION credits_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'The credit ledger is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER credits_transaction_append_only
    BEFORE UPDATE OR DELETE ON credits_credittransaction
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
CREATE TRIGGER credits_lotusage_append_only
    BEFORE UPDATE OR DELETE ON credits_creditlotusage
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
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
CREATE TRIGGER credits_lot_only_remaining
    BEFORE UPDATE ON credits_creditlot
    FOR EACH ROW EXECUTE FUNCTION credits_lot_only_remaining_changes();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS credits_lot_only_remaining ON credits_creditlot;
DROP TRIGGER IF EXISTS credits_lot_no_delete ON credits_creditlot;
DROP TRIGGER IF EXISTS credits_lotusage_append_only ON credits_creditlotusage;
DROP TRIGGER IF EXISTS credits_transaction_append_only ON credits_credittransaction;
DROP FUNCTION IF EXISTS credits_lot_only_remaining_changes();
DROP FUNCTION IF EXISTS credits_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("credits", "0002_initial")]
    operations = [migrations.RunPython(forward, backward)]
