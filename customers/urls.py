from django.urls import path

from . import views

app_name = "customers"
urlpatterns = [
    path("", views.customer_list, name="list"),
    path("balances.csv", views.customers_csv, name="balances-csv"),
    path("<owner:owner>/<int:pk>/", views.profile, name="profile"),
    path("users/<int:pk>/anonymise/", views.anonymise, name="anonymise"),
]
