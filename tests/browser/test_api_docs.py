"""/api/v1/docs: Swagger UI from the project's own static files (no CDN), working under
the Content-Security-Policy: the operations show, nothing is refused, and "Try it out"
sends a request with a key."""

import pytest
from playwright.sync_api import expect

from api import services as api_services
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_the_docs_page_runs_under_the_policy_from_our_own_files(page, live_server):
    errors, requested = [], []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requested.append(request.url))
    key = api_services.create_api_key(name="Docs", scope="read").key
    customer = UserFactory()

    response = page.goto("/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_text("/api/v1/customers/{customer_id}/transactions")).to_be_visible()
    assert all(url.startswith(live_server.url) for url in requested), requested

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.locator("input").fill(key)
    dialog.locator("button.modal-btn.authorize").click()
    dialog.locator("button.modal-btn", has_text="Close").click()
    page.get_by_text("A customer's balance, available and held credits").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_placeholder("customer_id").fill(f"user_{customer.pk}")
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table td.response-col_status").nth(1)).to_have_text("200")
    assert errors == []
