from django.urls import path

from . import views

app_name = "credits"
urlpatterns = [
    path("customers/<owner:owner>/<int:pk>/adjust/", views.adjust_balance, name="adjust"),
    path("customers/<owner:owner>/<int:pk>/transactions/", views.transactions, name="transactions"),
    path(
        "customers/<owner:owner>/<int:pk>/transactions/<int:transaction_id>/reverse/",
        views.reverse_transaction,
        name="reverse",
    ),
    path("customers/<owner:owner>/<int:pk>/transfer/", views.transfer_credits, name="transfer"),
    path(
        "customers/<owner:owner>/<int:pk>/transactions/export.csv",
        views.transactions_csv,
        name="transactions_csv",
    ),
]
