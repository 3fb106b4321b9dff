"""Deliveries of one email while the mail server is slow, on PostgreSQL, on separate
connections: the email goes out once, and neither the member nor a second delivery is
kept waiting meanwhile."""

import threading

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.db import connection

from credits import services as credits
from notifications import delivery, services
from notifications.models import EmailStatus, Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


class SlowBackend(locmem.EmailBackend):
    """A mail server that answers only when the test says so."""

    answering = threading.Event()
    answer = threading.Event()

    def send_messages(self, messages):
        SlowBackend.answering.set()
        assert SlowBackend.answer.wait(20), "the test never let the mail server answer"
        return super().send_messages(messages)


@pytest.fixture
def slow_mail_server(settings, monkeypatch):
    settings.EMAIL_BACKEND = f"{__name__}.SlowBackend"
    SlowBackend.answering.clear()
    SlowBackend.answer.clear()
    monkeypatch.setattr(delivery, "relay_after_commit", lambda: None)  # the test delivers
    yield
    SlowBackend.answer.set()


def in_thread(call, results):
    def run():
        try:
            results.append(call())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_slow_mail_server_neither_sends_twice_nor_keeps_anyone_waiting(slow_mail_server):
    member = UserFactory()
    credits.add_credits(member, 5)
    notice = Notification.objects.get(recipient=member)
    delivered, read = [], []

    first = in_thread(lambda: services.deliver_email(notice.pk), delivered)
    assert SlowBackend.answering.wait(10)  # the first delivery is talking to the mail server
    second = in_thread(lambda: services.deliver_email(notice.pk), delivered)
    reader = in_thread(lambda: services.mark_read(member), read)

    reader.join(10)
    assert not reader.is_alive() and read == [1]  # done while the email is still going out
    # The second delivery leaves the row to the first: it neither sends nor waits.
    second.join(10)
    assert not second.is_alive() and delivered == [(EmailStatus.PENDING, "")]
    SlowBackend.answer.set()
    first.join(10)

    assert delivered == [(EmailStatus.PENDING, ""), (EmailStatus.SENT, "")]
    assert len(mail.outbox) == 1
    notice.refresh_from_db()
    assert notice.email_status == EmailStatus.SENT and notice.email_attempts == 1
    assert notice.read_at is not None
