"""`make demo`'s server: runserver, with the relay and beat's schedule in a thread.

    python manage.py rundemo 127.0.0.1:8000

Without a broker the web process sends each email after the commit that wrote it; this
thread is the rest of what production's relay and beat do (docs/delivery.md, "Without a
broker"): it retries what failed once its backoff is over, takes up what a crash left,
and runs the schedule (the expiry sweep every 5 minutes, the reminders every hour), so a
balance never waits for the customer's next adjustment to show its expired credits. One
process: Ctrl-C stops everything, the embedded PostgreSQL included.
"""

import threading

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as RunServer
from django.core.management.base import CommandError

from notifications import delivery


class Command(RunServer):
    help = "Run the development server with the relay and beat's schedule (make demo)."

    def handle(self, *args, **options):
        if settings.CELERY_BROKER_URL:
            raise CommandError(
                "A broker is configured: run the relay and celery beat (see the Procfile)."
            )
        super().handle(*args, **options)

    def inner_run(self, *args, **options):
        # With the autoreloader this runs in the serving child, once per reload.
        schedule = delivery.Schedule(settings.CELERY_BEAT_SCHEDULE)
        threading.Thread(
            target=delivery.run, kwargs={"schedule": schedule}, name="relay", daemon=True
        ).start()
        self.stdout.write("Relay and beat's schedule running in this process.")
        super().inner_run(*args, **options)
