from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api import webhooks


class Command(BaseCommand):
    help = "Register a webhook endpoint and print its signing secret (its last line)."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument(
            "--events", required=True, help="Comma-separated, e.g. credit_transaction.created"
        )

    def handle(self, *args, url, events, **options):
        try:
            created = webhooks.create_webhook_endpoint(url, events=events.split(","))
        except ValidationError as error:
            raise CommandError(" ".join(error.messages))
        self.stderr.write(f"Registered {created.endpoint.url}. Its signing secret:")
        self.stdout.write(created.secret)
