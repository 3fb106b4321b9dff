"""The one writer of notifications (notifications/sql/write_notifications.sql)."""

from django.db import migrations

from notifications import sql_files


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]
    operations = [
        sql_files.apply(
            "write_notifications.sql",
            digest="dc77edd1fe8a",
            reverse_sql="DROP FUNCTION IF EXISTS notifications_write;",
        )
    ]
