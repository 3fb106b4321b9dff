from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = "Credits"

    def ready(self):
        # Registers the "credit_batch" channel of notifications.delivery (grants to many)
        # in every process (web, worker, relay) before any delivery runs.
        from . import services  # noqa: F401
