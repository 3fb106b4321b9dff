"""Each pending email knows when it is next due (the relay's lease and the retries' backoff,
notifications/delivery.py); the index of due pending rows replaces the one by creation
time that the 15-minute resend sweep used."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_write_function")]
    operations = [
        migrations.AddField(
            model_name="notification",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RemoveIndex(model_name="notification", name="notification_email_pending"),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("email_status", "pending")),
                fields=["next_attempt_at"],
                name="notification_email_due",
            ),
        ),
        # What was pending before the relay existed is due now.
        migrations.RunSQL(
            "UPDATE notifications_notification SET next_attempt_at = created_at"
            " WHERE email_status = 'pending'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
