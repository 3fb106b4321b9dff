from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        # Registers the email channel of notifications.delivery, in every process (web,
        # worker, relay) before any delivery runs.
        from customers.services import register_personal_data_eraser

        from . import services

        register_personal_data_eraser(services.forget_recipient)
