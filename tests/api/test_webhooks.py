"""Webhook endpoints: the URLs refused, the command, and signatures a Standard Webhooks
receiver verifies (delivery: test_webhook_delivery.py, test_webhook_worker.py)."""

import datetime as dt
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api import webhooks
from api.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_dns(monkeypatch):
    """Names resolve as this table says (no network in tests)."""
    table = {
        "hooks.example.com": ["93.184.216.34"],
        "internal.example.com": ["10.0.0.5"],
        "sneaky.example.com": ["93.184.216.34", "169.254.169.254"],
        "localhost": ["127.0.0.1", "::1"],
    }

    def resolve(host):
        import ipaddress

        if host not in table:
            try:
                return [ipaddress.ip_address(host.strip("[]"))]
            except ValueError:
                raise webhooks.socket.gaierror(host)
        return [ipaddress.ip_address(address) for address in table[host]]

    monkeypatch.setattr(webhooks, "resolve", resolve)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://sneaky.example.com/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
    ],
)
def test_link_local_and_metadata_addresses_are_always_refused(public_dns, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with pytest.raises(ValidationError):
        webhooks.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "https://internal.example.com/hook",
        "http://192.168.1.10/",
        "http://[::1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_and_loopback_addresses_are_refused_unless_allowed(public_dns, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError):
        webhooks.check_url(url)
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    assert webhooks.check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "hooks.example.com/x",
        "https://u:p@hooks.example.com/",
        "https://nowhere.invalid/",
        "javascript:alert(1)",
        "",
    ],
)
def test_only_http_urls_of_hosts_that_resolve(public_dns, url):
    with pytest.raises(ValidationError):
        webhooks.check_url(url)


def test_create_webhook_endpoint_prints_the_secret_as_its_last_line(public_dns):
    out = io.StringIO()
    call_command(
        "create_webhook_endpoint",
        "https://hooks.example.com/credits",
        "--events",
        "credit_transaction.created,hold.created",
        stdout=out,
    )
    secret = out.getvalue().strip().splitlines()[-1]
    endpoint = WebhookEndpoint.objects.get()
    assert secret.startswith("whsec_") and endpoint.secret == secret
    assert endpoint.events == ["credit_transaction.created", "hold.created"] and endpoint.enabled


def test_unknown_events_are_refused(public_dns):
    with pytest.raises(ValidationError):
        webhooks.create_webhook_endpoint("https://hooks.example.com/", events=["gift.sent"])


def test_a_receiver_verifies_the_signature_with_the_standardwebhooks_library(public_dns):
    created = webhooks.create_webhook_endpoint(
        "https://hooks.example.com/", events=["credit_transaction.created"]
    )
    body = json.dumps({"type": "credit_transaction.created", "data": {"id": 1}})
    now = timezone.now()
    headers = webhooks.signature_headers(
        created.endpoint, message_id="msg_1", timestamp=now, body=body
    )
    assert Webhook(created.secret).verify(body, headers)["data"] == {"id": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)

    old = created.secret
    new = webhooks.roll_secret(created.endpoint)
    rolled = webhooks.signature_headers(
        created.endpoint, message_id="msg_2", timestamp=now, body=body
    )
    assert Webhook(new).verify(body, rolled) and Webhook(old).verify(body, rolled)
    created.endpoint.previous_secret_until = now - dt.timedelta(seconds=1)
    after = webhooks.signature_headers(created.endpoint, message_id="m3", timestamp=now, body=body)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, after)


def _webhook_staff():
    from django.contrib.auth.models import Permission
    from django.test import Client

    from tests.factories import PASSWORD, StaffFactory

    staff = StaffFactory()
    staff.user_permissions.add(Permission.objects.get(codename="manage_webhooks"))
    client = Client()
    client.login(username=staff.email, password=PASSWORD)
    return client


def test_the_staff_page_registers_shows_the_secret_once_rolls_and_disables(public_dns):
    client = _webhook_staff()
    assert 'href="/webhooks/"' in client.get("/account/").content.decode()
    answer = client.post(
        "/webhooks/",
        {"url": "https://hooks.example.com/in", "events": ["credit_transaction.created"]},
    )
    assert answer.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in answer.content.decode()
    assert endpoint.secret not in client.get("/webhooks/").content.decode()
    rolled = client.post(f"/webhooks/{endpoint.pk}/roll-secret/")
    old = endpoint.secret
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in rolled.content.decode()
    assert client.post(f"/webhooks/{endpoint.pk}/toggle/").status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.enabled


def test_the_staff_page_refuses_bad_urls_and_staff_without_the_permission(public_dns, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client = _webhook_staff()
    refused = client.post(
        "/webhooks/", {"url": "http://169.254.169.254/", "events": ["hold.created"]}
    )
    assert refused.status_code == 422 and "link-local" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()
    from django.test import Client

    from tests.factories import PASSWORD, StaffFactory

    other = Client()
    other.login(username=StaffFactory().email, password=PASSWORD)
    assert other.get("/webhooks/").status_code == 403
