"""credits_post_adjustment passes the addresses of notices without a recipient (a
company's billing email) to notifications_write."""

from django.db import migrations

from credits import ledger_sql


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0002_ledger_sql"),
        ("notifications", "0005_address_without_recipient"),
    ]
    operations = [ledger_sql.apply("post_adjustment.sql", digest="7560b8eecc1a")]
