"""Password reset by email: Django's views, the same answer whether or not an account has
the address, throttled by the login lockout (customers.auth.count_reset_request)."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-long-passphrase"


def without_tokens(page) -> str:
    return re.sub(r'(csrftoken": "|value=")[^"]+"', "", page.content.decode())


def ask(client, email):
    return client.post("/password-reset/", {"email": email}, follow=True)


def link_in(email) -> str:
    return re.search(r"https?://\S+/password-reset/\S+/", email.body)[0]


def test_the_login_page_links_to_the_reset():
    page = Client().get("/login/").content.decode()
    assert 'href="/password-reset/"' in page
    assert "Forgot your password?" in page


def test_with_debug_on_the_login_page_says_where_the_demo_logins_are(settings):
    assert "Demo logins" not in Client().get("/login/").content.decode()
    settings.DEBUG = True
    page = Client().get("/login/").content.decode()
    assert "the logins are listed in the README, under “Demo logins”" in page
    assert "<code>spacecredits</code>" in page


def test_a_reset_link_by_email_sets_a_new_password(settings):
    settings.SITE_URL = "https://credits.example.com"
    member = UserFactory(email="maria@example.com")
    elsewhere = Client()
    elsewhere.force_login(member)
    response = ask(Client(), "Maria@Example.com ")
    assert response.redirect_chain[-1][0] == "/password-reset/sent/"
    assert "Check your email" in response.content.decode()
    (email,) = mail.outbox
    assert email.to == ["maria@example.com"]
    assert email.subject == "Reset your SpaceCredits password"
    link = link_in(email)
    assert link.startswith("https://credits.example.com/password-reset/")  # SITE_URL, not Host
    assert "works once, for 3 days" in email.body

    client = Client()
    form = client.get(link.removeprefix("https://credits.example.com"), follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert "Your password was changed" in done.content.decode()
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    # The other device's session ends; the link does not work twice.
    assert elsewhere.get("/membership/").status_code == 302
    again = Client().get(link.removeprefix("https://credits.example.com"), follow=True)
    assert "This link no longer works" in again.content.decode()
    assert (
        Client().post("/login/", {"username": member.email, "password": NEW_PASSWORD}).status_code
        == 302
    )


def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account():
    UserFactory(email="maria@example.com")
    UserFactory(email="gone@example.com", is_active=False)
    known = ask(Client(), "maria@example.com")
    for email in ["nobody@example.com", "gone@example.com"]:
        unknown = ask(Client(), email)
        assert unknown.status_code == known.status_code == 200
        assert unknown.redirect_chain == known.redirect_chain
        assert without_tokens(unknown) == without_tokens(known)
    assert [m.to for m in mail.outbox] == [["maria@example.com"]]


def test_a_bad_address_is_refused_with_a_message_and_nothing_is_sent():
    response = Client().post("/password-reset/", {"email": "not-an-address"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert mail.outbox == []


def test_a_mail_server_that_fails_gives_the_same_answer(monkeypatch, caplog):
    UserFactory(email="maria@example.com")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    response = ask(Client(), "maria@example.com")
    assert response.redirect_chain[-1][0] == "/password-reset/sent/"
    assert "Failed to send password reset email" in caplog.text


@pytest.mark.parametrize("email", ["maria@example.com", "nobody@example.com"])
def test_requests_are_throttled_by_the_login_lockout(email):
    UserFactory(email="maria@example.com")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert ask(client, email).redirect_chain[-1][0] == "/password-reset/sent/"
    locked = ask(client, email)
    assert locked.status_code == 429
    assert "Too many requests" in locked.content.decode()
    assert "paused for 15 minutes" in locked.content.decode()
    assert ask(client, email).status_code == 429
    # No more emails than the lockout lets through, known address or not.
    sent = settings.AXES_FAILURE_LIMIT - 1 if email.startswith("maria") else 0
    assert len(mail.outbox) == sent
    # The same lockout: logging in to that address from here waits too; others do not.
    assert client.post("/login/", {"username": email, "password": PASSWORD}).status_code == 429
    other = UserFactory()
    assert ask(client, other.email).redirect_chain[-1][0] == "/password-reset/sent/"


def test_a_wrong_password_and_reset_requests_count_together():
    member = UserFactory(email="maria@example.com")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": member.email, "password": "wrong"})
    assert ask(client, member.email).status_code == 429
    assert mail.outbox == []
