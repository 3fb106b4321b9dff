"""The relay: hands due deliveries (emails) from the database to Celery.

    python manage.py relay_deliveries    # production, beside the worker (Procfile)

Without a broker (make demo), `manage.py rundemo` runs the same relay in a thread.

notifications/delivery.py says how; docs/delivery.md why. Several relays may run at once
(each row is claimed by one); SIGTERM or Ctrl-C stops it within a poll.
"""

import signal
import sys

from django.core.management.base import BaseCommand

from notifications import delivery


class Command(BaseCommand):
    help = "Hand due deliveries (emails) to Celery, looking for them every --poll seconds."

    def add_arguments(self, parser):
        parser.add_argument(
            "--poll",
            type=float,
            default=delivery.POLL_SECONDS,
            help="Seconds between looks for due rows (default %(default)s).",
        )

    def handle(self, *args, poll, **options):
        # Exit cleanly on SIGTERM (honcho, systemd), so atexit handlers run: the embedded
        # PostgreSQL stops when its last user process has exited.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write(f"Relaying deliveries (poll {poll:g} s).")
        try:
            delivery.run(poll_seconds=poll)
        except KeyboardInterrupt:
            pass
