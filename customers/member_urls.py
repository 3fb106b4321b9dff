"""URLs of the member side, mounted at the site root: /membership/... and /account/..."""

from django.urls import path

from . import member_views as views

app_name = "member"
urlpatterns = [
    path("membership/", views.membership, name="membership"),
    # <owner>: "users" or "companies", as on the staff side (customers/converters.py).
    path(
        "membership/<owner:owner>/<int:pk>/transactions/",
        views.transactions,
        name="transactions",
    ),
    path(
        "membership/<owner:owner>/<int:pk>/transactions.csv",
        views.transactions_csv,
        name="transactions-csv",
    ),
    path("membership/companies/<int:pk>/members/", views.company_members, name="company-members"),
    path(
        "membership/companies/<int:pk>/members/credits-visibility/",
        views.company_credits_visibility,
        name="company-credits-visibility",
    ),
    path("account/", views.account, name="account"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password-change"),
]
