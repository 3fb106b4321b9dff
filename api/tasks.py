from celery import shared_task

from . import services, webhook_delivery


@shared_task
def delete_expired_idempotency_records() -> int:
    return services.delete_expired_idempotency_records()


@shared_task
def delete_old_webhook_deliveries() -> int:
    return webhook_delivery.delete_old_deliveries()
