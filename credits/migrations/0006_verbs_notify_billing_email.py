"""The verbs' notices (credits_notify in credits/sql/verbs.sql) reach a company's billing
email when it has no active manager, like an adjustment's."""

from django.db import migrations

from credits import ledger_sql


class Migration(migrations.Migration):
    dependencies = [("credits", "0005_ledger_verbs_sql")]
    operations = [ledger_sql.apply("verbs.sql", digest="d1fe823fba3e")]
