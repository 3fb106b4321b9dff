"""The relay: hands due deliveries (emails) from the database to Celery.

    python manage.py relay_deliveries              # production, beside the worker (Procfile)
    python manage.py relay_deliveries --schedule   # make demo: also runs beat's schedule

notifications/delivery.py says how; docs/delivery.md why. Several relays may run at once
(each row is claimed by one); SIGTERM or Ctrl-C stops it within a poll.
"""

import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications import delivery


class Command(BaseCommand):
    help = "Hand due email deliveries to Celery (LISTEN notifications, poll every few s)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--poll",
            type=float,
            default=delivery.POLL_SECONDS,
            help="Seconds between looks for due rows without a notify (default %(default)s).",
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Also run Celery beat's schedule (expiry sweep, reminders) in this process;"
            " for running without a broker (make demo). With a broker, run celery beat.",
        )

    def handle(self, *args, poll, schedule, **options):
        # Exit cleanly on SIGTERM (honcho, systemd), so atexit handlers run: the embedded
        # PostgreSQL stops when its last user process has exited.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        beat = None
        if schedule:
            if settings.CELERY_BROKER_URL:
                self.stderr.write("A broker is configured: --schedule ignored (run celery beat).")
            else:
                beat = delivery.Schedule(settings.CELERY_BEAT_SCHEDULE)
        self.stdout.write(
            f"Relaying deliveries (poll {poll:g} s{', with the beat schedule' if beat else ''})."
        )
        try:
            delivery.run(poll_seconds=poll, schedule=beat)
        except KeyboardInterrupt:
            pass
