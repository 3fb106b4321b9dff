"""The ledger's SQL (credits/sql/): accounts opened with their customers, the append-only
triggers and the checks at commit, and the adjustment function, which writes its notices
through notifications' writer."""

from django.db import migrations

from credits import ledger_sql


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0001_initial"),
        ("notifications", "0002_write_function"),
    ]
    operations = [
        ledger_sql.apply(
            "open_accounts.sql",
            digest="e61aeb1ad1f6",
            reverse_sql="DROP FUNCTION IF EXISTS credits_open_account CASCADE;",
        ),
        ledger_sql.apply(
            "append_only.sql",
            digest="0bfc4eb2119c",
            reverse_sql="DROP FUNCTION IF EXISTS credits_refuse_change CASCADE;"
            " DROP FUNCTION IF EXISTS credits_lot_only_remaining_changes CASCADE;"
            " DROP FUNCTION IF EXISTS credits_check_account_balance CASCADE;"
            " DROP FUNCTION IF EXISTS credits_check_lot_remaining CASCADE;",
        ),
        ledger_sql.apply(
            "post_adjustment.sql",
            digest="eac2de8eb6f3",
            reverse_sql="DROP FUNCTION IF EXISTS credits_post_adjustment;",
        ),
    ]
