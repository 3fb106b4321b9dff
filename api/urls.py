from django.urls import path

from . import views

app_name = "api"
urlpatterns = [
    path("api-keys/", views.api_keys, name="keys"),
    path("api-keys/<int:pk>/revoke/", views.revoke, name="revoke"),
    path("webhooks/", views.webhook_endpoints, name="webhooks"),
    path("webhooks/<int:pk>/roll-secret/", views.webhook_roll_secret, name="webhook-roll"),
    path("webhooks/<int:pk>/toggle/", views.webhook_toggle, name="webhook-toggle"),
    path(
        "webhooks/deliveries/<int:pk>/send-again/",
        views.webhook_send_again,
        name="webhook-send-again",
    ),
]
