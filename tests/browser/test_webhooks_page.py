"""The Webhooks page in a real browser: staff see each delivery with its status and
attempts, and send a sent or a failed one again from its row; the failed one, sent again
once the receiver is back, ends up sent."""

import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from api import webhooks
from api.models import WebhookDelivery, WebhookEvent
from credits import services
from tests.api.webhook_receiver import drain
from tests.factories import PASSWORD, StaffFactory, UserFactory


@pytest.mark.django_db(transaction=True)
def test_staff_see_deliveries_and_send_one_again(
    page, login, screenshot, receiver, fast_retries, eager_tasks
):
    staff = StaffFactory(email="integrations@example.com", first_name="Ines", last_name="Ops")
    staff.user_permissions.add(Permission.objects.get(codename="manage_webhooks"))
    endpoint = webhooks.create_webhook_endpoint(
        receiver.url, events=WebhookEvent.values, created_by=staff
    ).endpoint

    # The receiver takes the first change and refuses the second, every time it comes.
    receiver.answer = lambda request: 500 if request.json["data"]["memo"] == "Top-up" else 200
    sent_tx = services.add_credits(UserFactory(), 5, memo="Welcome")
    failed_tx = services.add_credits(UserFactory(), 7, memo="Top-up")
    drain()
    sent = WebhookDelivery.objects.get(object_id=sent_tx.pk)
    failed = WebhookDelivery.objects.get(object_id=failed_tx.pk)
    assert (sent.status, failed.status) == ("sent", "failed")
    failed_attempts = failed.attempt_log.count()
    assert failed_attempts == 8  # the first try and seven retries

    login(staff.email, PASSWORD)
    page.goto("/webhooks/")
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    deliveries = page.get_by_role("region", name=f"Recent deliveries to {endpoint.url}")
    sent_row = deliveries.locator(f"#delivery-{sent.pk}")
    failed_row = deliveries.locator(f"#delivery-{failed.pk}")

    expect(sent_row.locator("td[data-label=Status]")).to_have_text("Sent")
    expect(sent_row.locator("td[data-label='Webhook id']")).to_have_text(sent.webhook_id)
    expect(sent_row.locator("ol.attempts li")).to_have_count(1)
    expect(sent_row.locator("ol.attempts")).to_contain_text("HTTP 200")
    expect(sent_row.get_by_role("button", name="Send again")).to_be_visible()

    expect(failed_row.locator("td[data-label=Status]")).to_have_text("Failed")
    expect(failed_row.locator("td[data-label='Webhook id']")).to_have_text(failed.webhook_id)
    expect(failed_row.locator("ol.attempts li")).to_have_count(failed_attempts)
    expect(failed_row.locator("ol.attempts li").first).to_contain_text("HTTP 500")
    expect(failed_row.get_by_role("button", name="Send again")).to_be_visible()
    screenshot("webhooks-deliveries")

    # The receiver is back; the failed one goes out again from its row (htmx swaps the
    # endpoint's deliveries in place). The live server hands it out as the click commits
    # (tasks run in-process, as in make demo); drain() makes sure of it.
    receiver.answer = None
    failed_row.get_by_role("button", name="Send again").click()
    expect(failed_row.locator("td[data-label=Status]")).to_have_text(re.compile("Waiting|Sent"))
    drain()
    page.reload()
    expect(failed_row.locator("td[data-label=Status]")).to_have_text("Sent")
    expect(failed_row.locator("ol.attempts li")).to_have_count(failed_attempts + 1)
    expect(failed_row.locator("ol.attempts li").last).to_contain_text("HTTP 200")
    expect(sent_row.locator("td[data-label=Status]")).to_have_text("Sent")
    again = receiver.received[-1]
    assert again.webhook_id == failed.webhook_id
    assert again.json["data"]["id"] == failed_tx.pk
    receiver.verified(endpoint.secret)
