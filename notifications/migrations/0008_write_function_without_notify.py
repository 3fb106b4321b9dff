"""notifications_write no longer runs pg_notify: NOTIFY's commit lock made every
adjustment commit one after another; the relay polls instead (docs/delivery.md)."""

from django.db import migrations

from notifications import sql_files


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0007_webhook_switched_off"),
    ]

    operations = [
        sql_files.apply("write_notifications.sql", digest="78b642438a80"),
    ]
