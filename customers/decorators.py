from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from credits import policies


def staff_required(view):
    """The staff pages: log in first; anyone whom policies do not let manage customers
    gets 403 (a member never sees a customer list)."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not policies.can_manage_customers(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return guarded
