from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from customers import views as customer_views
from spacecredits.views import healthz

urlpatterns = [
    path("", customer_views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="customers/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("customers/", include("customers.urls")),
    path("", include("credits.urls")),
    path("", include("customers.member_urls")),
    path("", include("notifications.urls")),
    path("healthz", healthz, name="healthz"),
]

admin.site.site_header = "SpaceCredits administration"
admin.site.site_title = "SpaceCredits admin"
