from django.urls import path

from . import member_views, views

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
    path("customers/grant/", views.grant_to_many, name="grant"),
    path("customers/grants/<int:pk>/", views.batch, name="batch"),
    # The member side: a company manager's transfers and limits (the Members page).
    path(
        "membership/companies/<int:pk>/members/transfer/",
        member_views.company_transfer,
        name="company-transfer",
    ),
    path(
        "membership/companies/<int:pk>/members/<int:user_id>/limit/",
        member_views.company_member_limit,
        name="company-member-limit",
    ),
    path(
        "customers/<owner:owner>/<int:pk>/transactions/export.csv",
        views.transactions_csv,
        name="transactions_csv",
    ),
]
