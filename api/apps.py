from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Public API"

    def ready(self):
        # Registers the webhook channel of notifications.delivery, in every process (web,
        # worker, relay) before any delivery runs.
        from . import webhook_delivery  # noqa: F401
