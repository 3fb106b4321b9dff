"""The staff page "API keys", and the 404 for unknown paths under /api/."""

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from . import policies, selectors, services, webhook_delivery, webhooks
from .forms import ApiKeyForm, WebhookEndpointForm
from .models import ApiKey, WebhookDelivery, WebhookEndpoint
from .problems import problem


def not_found(request, *args, **kwargs):
    return problem(404, "not_found", "There is nothing at this address.")


def _guard(request, allowed=policies.can_manage_api_keys):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not allowed(request.user):
        raise PermissionDenied
    return None


@require_http_methods(["GET", "POST"])
def api_keys(request):
    """The keys, and a form for a new one; a new key is shown on the answer to its POST,
    and never again."""
    if refused := _guard(request):
        return refused
    created = None
    status = 200
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                created = services.create_api_key(created_by=request.user, **form.cleaned_data)
            except ValidationError as error:
                form.add_error(None, error)
                status = 422
            else:
                form = ApiKeyForm()
        else:
            status = 422
    else:
        form = ApiKeyForm()
    context = {
        "form": form,
        "created": created,
        "keys": ApiKey.objects.select_related("created_by"),
    }
    return render(request, "api/api_keys.html", context, status=status)


@require_POST
def revoke(request, pk: int):
    if refused := _guard(request):
        return refused
    services.revoke_api_key(get_object_or_404(ApiKey, pk=pk))
    return redirect("api:keys")


@require_http_methods(["GET", "POST"])
def webhook_endpoints(request):
    """The endpoints, and a form for a new one; a secret is shown on the answer that made
    it (registering or rolling), and never again."""
    if refused := _guard(request, policies.can_manage_webhooks):
        return refused
    secret, status = None, 200
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                created = webhooks.create_webhook_endpoint(
                    form.cleaned_data["url"],
                    events=form.cleaned_data["events"],
                    created_by=request.user,
                )
            except ValidationError as error:
                for field, messages in error.message_dict.items():
                    for message in messages:
                        form.add_error(field if field in form.fields else None, message)
                status = 422
            else:
                secret = (created.endpoint, created.secret)
                form = WebhookEndpointForm()
        else:
            status = 422
    else:
        if request.htmx:  # the endpoints' table, refreshed after a change elsewhere
            endpoints = WebhookEndpoint.objects.all()
            return render(
                request, "api/webhook_endpoints.html#endpoints-table", {"endpoints": endpoints}
            )
        form = WebhookEndpointForm()
    return _webhooks_page(request, form, secret, status)


def _webhooks_page(request, form, secret, status=200):
    context = {
        "form": form,
        "secret": secret,
        "endpoints": selectors.webhook_endpoints_with_recent_deliveries(),
    }
    return render(request, "api/webhook_endpoints.html", context, status=status)


@require_POST
def webhook_roll_secret(request, pk: int):
    if refused := _guard(request, policies.can_manage_webhooks):
        return refused
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    secret = webhooks.roll_secret(endpoint)
    return _webhooks_page(request, WebhookEndpointForm(), (endpoint, secret))


@require_POST
def webhook_toggle(request, pk: int):
    if refused := _guard(request, policies.can_manage_webhooks):
        return refused
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    webhooks.set_enabled(endpoint, not endpoint.enabled)
    return redirect("api:webhooks")


@require_POST
def webhook_send_again(request, pk: int):
    """A failed or sent delivery pending again, with fresh attempts; htmx gets its endpoint's
    deliveries back (the page's `deliveries` partial)."""
    if refused := _guard(request, policies.can_manage_webhooks):
        return refused
    row = get_object_or_404(WebhookDelivery, pk=pk)
    webhook_delivery.send_again([row.pk])
    if request.htmx:
        endpoint = selectors.webhook_endpoints_with_recent_deliveries(pk=row.endpoint_id)[0]
        response = render(request, "api/webhook_endpoints.html#deliveries", {"endpoint": endpoint})
        # The endpoint's status (failing since) may have changed: its table refreshes itself.
        return trigger_client_event(response, "webhooksChanged")
    return redirect("api:webhooks")
