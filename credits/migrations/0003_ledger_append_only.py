"""The database itself keeps the ledger append-only (credits/sql/append_only.sql)."""

from django.db import migrations

from credits import ledger_sql

BACKWARD = """
DROP TRIGGER IF EXISTS credits_lot_only_remaining ON credits_creditlot;
DROP TRIGGER IF EXISTS credits_lot_no_delete ON credits_creditlot;
DROP TRIGGER IF EXISTS credits_lotusage_append_only ON credits_creditlotusage;
DROP TRIGGER IF EXISTS credits_transaction_append_only ON credits_credittransaction;
DROP FUNCTION IF EXISTS credits_lot_only_remaining_changes();
DROP FUNCTION IF EXISTS credits_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("credits", "0002_initial")]
    operations = [
        ledger_sql.apply("append_only.sql", digest="64b27af1c121", reverse_sql=BACKWARD)
    ]
