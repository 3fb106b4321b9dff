"""notifications_write planned once per connection (plan_cache_mode =
force_generic_plan): docs/performance.md, round six."""

from django.db import migrations

from notifications import sql_files


class Migration(migrations.Migration):
    dependencies = [("notifications", "0008_write_function_without_notify")]

    operations = [
        sql_files.apply("write_notifications.sql", digest="7dc32a26a1e4"),
    ]
