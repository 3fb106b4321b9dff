from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from spacecredits.htmx import render_page_or_part
from spacecredits.params import get_page, whole_number

from . import selectors, services
from .forms import PreferencesForm

PAGE_SIZE = 20
CHANGED = "notificationsChanged"


@login_required
@require_GET
def notification_list(request):
    paginator = Paginator(selectors.inbox(request.user), PAGE_SIZE)
    page, page_error = get_page(paginator, request.GET.get("page"))
    context = {
        "page": page,
        "page_error": page_error,
        "unread": selectors.unread_count(request.user),
    }
    # The unread count alone, after a notification was marked read.
    return render_page_or_part(
        request, "notifications/list.html", context, partials={"notification-summary"}
    )


@require_GET
def bell(request):
    """The header bell alone, for htmx to refresh the unread count."""
    if not request.user.is_authenticated:
        # Logged out in another tab: 286 tells htmx to stop polling (instead of swapping
        # the login page into the header).
        return HttpResponse(status=286)
    return render(request, "notifications/_bell.html")


@login_required
@require_POST
def mark_read(request):
    """Mark one notification read (`id`) or all of them (no `id`)."""
    if "id" in request.POST:
        notification_id = whole_number(request.POST["id"], minimum=1)
        if notification_id is None:
            return HttpResponseBadRequest(
                "That is not a notification's id.\n", content_type="text/plain; charset=utf-8"
            )
        notification = get_object_or_404(selectors.inbox(request.user), pk=notification_id)
        services.mark_read(request.user, [notification.pk])
        if request.htmx:
            notification.refresh_from_db()
            response = TemplateResponse(
                request, "notifications/list.html#item", {"notification": notification}
            )
            return trigger_client_event(response, CHANGED)
    else:
        count = services.mark_read(request.user)
        if count:
            messages.success(request, "All notifications are marked as read.")
    page = whole_number(request.POST.get("page"), minimum=1)
    return redirect(reverse("notifications:list") + (f"?page={page}" if page else ""))


@login_required
@require_GET
def open_notification(request, notification_id):
    """Mark a notification read and go to the transactions it is about."""
    notification = get_object_or_404(selectors.inbox(request.user), pk=notification_id)
    services.mark_read(request.user, [notification.pk])
    return redirect(notification.link)


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, instance=selectors.preferences_of(request.user))
    if request.method == "POST" and form.is_valid():
        services.update_preferences(request.user, **form.cleaned_data)
        messages.success(request, "Your email preferences are saved.")
        return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})
