"""An email backend that keeps messages in the database (CapturedEmail) instead of sending.

Set EMAIL_BACKEND=notifications.backends.DatabaseEmailBackend for demos and for the tests
that count what a real Celery worker sent. It writes on the default connection, inside the
transaction that marks the notification sent, so a message is kept exactly once.
"""

from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone


class DatabaseEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        from .models import CapturedEmail

        rows = []
        for message in email_messages:
            html = next(
                (
                    content
                    for content, mimetype in getattr(message, "alternatives", [])
                    if mimetype == "text/html"
                ),
                "",
            )
            rows.append(
                CapturedEmail(
                    to=", ".join(message.to),
                    subject=message.subject,
                    body=message.body,
                    html=html,
                    message_id=message.extra_headers.get("Message-ID", ""),
                    created_at=timezone.now(),
                )
            )
        CapturedEmail.objects.bulk_create(rows)
        return len(rows)
