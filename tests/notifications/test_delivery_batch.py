"""A task delivers a batch of emails over one mail server session: each is recorded as it
goes, and one that fails neither stops the others nor is counted for them."""

import smtplib

import pytest
from django.core import mail
from django.core.mail.backends import locmem

from credits import services as credits
from notifications import delivery
from notifications.models import EmailStatus, Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class CountingBackend(locmem.EmailBackend):
    """A mail server that counts the sessions opened and refuses one address."""

    opened = 0

    def open(self):
        if getattr(self, "is_open", False):
            return False
        CountingBackend.opened += 1
        self.is_open = True
        return True

    def close(self):
        self.is_open = False

    def send_messages(self, messages):
        assert self.is_open, "a message sent outside the batch's session"
        if any("bounce" in address for message in messages for address in message.to):
            self.close()
            raise smtplib.SMTPRecipientsRefused({"bounce": (550, b"No such user")})
        return super().send_messages(messages)


@pytest.fixture
def counting_mail_server(settings):
    settings.EMAIL_BACKEND = f"{__name__}.CountingBackend"
    CountingBackend.opened = 0


def test_a_batch_sends_each_once_over_one_session_and_keeps_a_failure_to_itself(
    counting_mail_server,
):
    members = [UserFactory(email=f"{name}@example.com") for name in ("ann", "bounce", "cem")]
    for member in members:
        credits.add_credits(member, 5)  # In the test's transaction: nothing sent yet.
    ids = list(Notification.objects.order_by("pk").values_list("pk", flat=True))

    outcomes = delivery.deliver("email", ids)

    assert [outcomes[pk][0] for pk in ids] == [EmailStatus.SENT, EmailStatus.PENDING, "sent"]
    assert "SMTPRecipientsRefused" in outcomes[ids[1]][1]
    assert [message.to for message in mail.outbox] == [["ann@example.com"], ["cem@example.com"]]
    # One session for the batch, and a fresh one after the server dropped the failed one.
    assert CountingBackend.opened == 2
    rows = {row.pk: row for row in Notification.objects.all()}
    assert [rows[pk].email_attempts for pk in ids] == [1, 1, 1]
    assert rows[ids[1]].email_error.startswith("SMTPRecipientsRefused")

    assert delivery.deliver("email", ids)[ids[0]] == (EmailStatus.SENT, "")  # sent already
    assert len(mail.outbox) == 2
