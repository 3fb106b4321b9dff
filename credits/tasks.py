from celery import shared_task

from . import ledger_check, notices, services


@shared_task(name="credits.tasks.expire_due_credits", ignore_result=True)
def expire_due_credits() -> int:
    return services.expire_due_credits()


@shared_task(name="credits.tasks.send_expiry_reminders", ignore_result=True)
def send_expiry_reminders() -> int:
    return notices.send_expiry_reminders()


@shared_task(name="credits.tasks.check_ledger", ignore_result=True)
def check_ledger() -> bool:
    return ledger_check.check_and_report().ok


# Grants to many now run as deliveries (services.CREDIT_BATCH); this task stays for tasks
# queued before that, and to run a batch again by hand.
@shared_task(name="credits.tasks.run_credit_batch", ignore_result=True)
def run_credit_batch(batch_id: int) -> None:
    services.run_credit_batch(batch_id)
