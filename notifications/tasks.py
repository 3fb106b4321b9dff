"""Thin Celery wrappers around notifications.delivery (ids in, the module does the work)."""

from celery import shared_task

from . import delivery


@shared_task(name="notifications.tasks.deliver", ignore_result=True)
def deliver(channel: str, pks: list[int]) -> None:
    """Send a batch of deliveries (emails, say); a repeated task sends nothing twice. No
    Celery retry: a failed attempt makes the row due again later, and the relay hands it
    out."""
    delivery.deliver(channel, pks)
