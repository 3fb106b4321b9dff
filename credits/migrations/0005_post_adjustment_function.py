"""An adjustment is one call of `credits_post_adjustment` (credits/sql/post_adjustment.sql)."""

from django.db import migrations

from credits import ledger_sql

BACKWARD = """
DROP FUNCTION IF EXISTS credits_post_adjustment(
    bigint, bigint, varchar, numeric, date, varchar, bigint, varchar, timestamptz, text,
    varchar, bigint[], varchar[], text[], varchar);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0004_account_last_transaction_at"),
        ("notifications", "0001_initial"),
    ]
    operations = [
        ledger_sql.apply("post_adjustment.sql", digest="dd135ba0b571", reverse_sql=BACKWARD)
    ]
