"""notifications_write sets next_attempt_at and wakes the relay (pg_notify)."""

from django.db import migrations

from notifications import sql_files


class Migration(migrations.Migration):
    dependencies = [("notifications", "0003_next_attempt_at")]
    operations = [sql_files.apply("write_notifications.sql", digest="4d5831b36649")]
