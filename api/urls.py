from django.urls import path

from . import views

app_name = "api"
urlpatterns = [
    path("api-keys/", views.api_keys, name="keys"),
    path("api-keys/<int:pk>/revoke/", views.revoke, name="revoke"),
]
