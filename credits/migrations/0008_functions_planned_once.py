"""The ledger's functions planned once per connection (plan_cache_mode =
force_generic_plan): docs/performance.md, round six."""

from django.db import migrations

from credits import ledger_sql


class Migration(migrations.Migration):
    dependencies = [("credits", "0007_batch_run_delivery")]

    operations = [
        ledger_sql.apply("post_adjustment.sql", digest="f7ccf54f1509"),
        ledger_sql.apply("verbs.sql", digest="9686f25273a5"),
    ]
