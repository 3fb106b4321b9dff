from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from api import views as api_views
from api.v1 import api as api_v1
from customers import views as customer_views
from spacecredits.views import healthz


def favicon(request):
    # The icon's hashed name is known only once the manifest is read, not at import.
    return redirect(static("img/favicon.svg"))  # not permanent: the name changes with the icon


urlpatterns = [
    path("", customer_views.home, name="home"),
    path("login/", customer_views.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", customer_views.password_reset, name="password-reset"),
    path("password-reset/sent/", customer_views.password_reset_sent, name="password-reset-sent"),
    path(
        "password-reset/<uidb64>/<token>/",
        customer_views.password_reset_confirm,
        name="password-reset-confirm",
    ),
    path(
        "password-reset/done/",
        customer_views.password_reset_complete,
        name="password-reset-complete",
    ),
    # The admin's own password change asks for the old password as well: it is the member
    # one, whose check counts towards the login lockout.
    path(
        "admin/password_change/",
        RedirectView.as_view(pattern_name="member:password-change"),
    ),
    path("admin/", admin.site.urls),
    path("customers/", include("customers.urls")),
    path("", include("credits.urls")),
    path("", include("customers.member_urls")),
    path("", include("notifications.urls")),
    path("api/v1/", api_v1.urls),
    # Anything else under /api/ is a 404 problem document (api/problems.py), not a page.
    re_path(r"^api/", api_views.not_found),
    path("", include("api.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers ask every page's origin for /favicon.ico; a 404 there is a console error.
    # Pages name the icon themselves (base.html); this is for those that do not.
    path("favicon.ico", favicon),
]

admin.site.site_header = "SpaceCredits administration"
admin.site.site_title = "SpaceCredits admin"
