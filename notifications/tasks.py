"""Thin Celery wrappers around notifications.services (ids in, services do the work)."""

from celery import shared_task

from . import services
from .models import EmailStatus


@shared_task(
    bind=True,
    name="notifications.tasks.send_notification_email",
    ignore_result=True,
    max_retries=None,  # The row's attempt count ends the retries (it turns "failed").
)
def send_notification_email(self, notification_id: int) -> str:
    """Send one notification's email; a redelivered or repeated task sends nothing twice."""
    status, error = services.deliver_email(notification_id)
    if status == EmailStatus.PENDING and error:
        # The attempt is counted on the row; the countdown grows with it and stays far
        # below the broker's visibility timeout.
        raise self.retry(countdown=services.pending_retry_countdown(notification_id))
    return status


@shared_task(name="notifications.tasks.resend_pending_emails", ignore_result=True)
def resend_pending_emails() -> int:
    return services.resend_pending_emails()
