"""The ledger's other verbs in its SQL (credits/sql/verbs.sql, expire_due_holds.sql): the
guards grow to the new tables, the adjustment takes the monthly limit and the holds into
account, and notices of holds are their own kind."""

from django.db import migrations

from credits import ledger_sql


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0004_ledger_verbs"),
        ("customers", "0007_ledger_verbs"),
        ("notifications", "0006_credits_held"),
    ]
    operations = [
        ledger_sql.apply("append_only.sql", digest="e8768fef75cb"),
        ledger_sql.apply(
            "post_adjustment.sql",
            digest="bfc86d6d5039",
            reverse_sql="DROP FUNCTION IF EXISTS credits_take_in_order;"
            " DROP FUNCTION IF EXISTS credits_month_spent CASCADE;",
        ),
        ledger_sql.apply(
            "verbs.sql",
            digest="832312bbd350",
            reverse_sql="DROP FUNCTION IF EXISTS credits_reverse, credits_refund, credits_hold,"
            " credits_capture, credits_release, credits_transfer, credits_give_back,"
            " credits_notify, credits_is_due;",
        ),
    ]
