from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Public API"

    def ready(self):
        # Registers the webhook channel of notifications.delivery, in every process (web,
        # worker, relay) before any delivery runs.
        from django.db.models import F, Value
        from django.db.models.functions import Concat, NullIf

        from credits.selectors import register_made_by

        from . import webhook_delivery  # noqa: F401

        # The history shows a change made through a key as "API: <key name>".
        # (Concat reads NULL as "", so a row no key made would say "API: ".)
        name = F("api_change__api_key__name")
        register_made_by(NullIf(Concat(Value("API: "), name), Value("API: ")))
