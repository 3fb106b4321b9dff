"""No TRUNCATE of the ledger, and at commit every account's balance and every lot's
remaining agree with the ledger's rows (credits/sql/append_only.sql)."""

from django.db import migrations

from credits import ledger_sql


class Migration(migrations.Migration):
    dependencies = [("credits", "0007_actor_index_without_system_rows")]
    operations = [ledger_sql.apply("append_only.sql", digest="41203ab52c52")]
