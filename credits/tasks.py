from celery import shared_task

from . import services


@shared_task(name="credits.tasks.expire_due_credits", ignore_result=True)
def expire_due_credits() -> int:
    return services.expire_due_credits()
