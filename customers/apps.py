from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers"

    def ready(self):
        from django.urls import register_converter

        from .converters import OwnerConverter

        register_converter(OwnerConverter, "owner")
