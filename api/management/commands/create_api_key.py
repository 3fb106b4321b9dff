from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api import services
from api.models import Scope


class Command(BaseCommand):
    help = "Create an API key and print it (its last line): it is shown only this once."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", required=True, choices=Scope.values)

    def handle(self, *args, name, scope, **options):
        try:
            created = services.create_api_key(name=name, scope=scope)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages))
        self.stderr.write(f"Created API key {created.api_key.name!r} ({scope}). Keep it safe:")
        self.stdout.write(created.key)
