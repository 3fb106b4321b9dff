from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Public API"

    def ready(self):
        # Registers the webhook channel of notifications.delivery, in every process (web,
        # worker, relay) before any delivery runs.
        from credits.selectors import register_made_by

        from . import webhook_delivery  # noqa: F401
        from .selectors import made_by_key

        # The history shows a change made through a key as "API: <key name>".
        register_made_by(made_by_key())
