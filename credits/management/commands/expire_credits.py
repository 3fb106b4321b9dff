from django.core.management.base import BaseCommand

from credits import services


class Command(BaseCommand):
    help = "Write an expiration transaction for every credit lot whose time is up."

    def handle(self, *args, **options):
        count = services.expire_due_credits()
        self.stdout.write(f"Expired {count} lot{'s' if count != 1 else ''}.")
